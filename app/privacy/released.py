"""Released results: the only form in which a number may leave the portal.

The query service computes values from published atoms (or, for the internal tier, from true
counts); `release_result` applies the publication rules (reliability, suppression of sensitive
prevalence on small bases, flags) and is the only constructor of `ReleasedResult`. The formats, REST and
GraphQL accept nothing else, so an unfiltered number cannot reach a response.

Flags follow SDMX: OBS_STATUS A normal, U low reliability, Q suppressed (confidential), O missing;
CONF_STATUS F free, N restricted (department and internal use), C confidential.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from app.models import Indicator, Release
from auth.principal import Tier

LOW_NUMERATOR: Final = 20  # a rate on fewer events is of low reliability (DESIGN.md)
LOW_DENOMINATOR: Final = 100
SUPPRESS_SENSITIVE_BELOW: Final = 20  # sensitive prevalence on fewer persons is not shown
EDGE_BAND: Final = 5.0  # a low-reliability sensitive prevalence within 5 points of 0 or 100 shows as a band
SENSITIVE_INDICATORS: Final = frozenset({"CPR", "CPR_MODERN"})  # health data under Decree 13/2023

CENSUS_METHOD: Final = "published census totals (GSO, 2019): no further disclosure control"
INTERNAL_METHOD: Final = "exact counts (internal tier; every access audited)"


class ObsStatus(StrEnum):
    NORMAL = "A"
    LOW_RELIABILITY = "U"
    SUPPRESSED = "Q"
    MISSING = "O"


class ConfStatus(StrEnum):
    FREE = "F"
    RESTRICTED = "N"
    CONFIDENTIAL = "C"


@dataclass(frozen=True)
class Computed:
    """A value the query service computed, before publication rules. Internal to the data path."""

    area: str
    period: str
    breakdown: dict[str, str]
    value: float | None
    numerator: float
    denominator: float | None  # None for counts
    exact: bool  # every count it reads is exact (an invariant, or the internal tier)


@dataclass(frozen=True)
class ReleasedObservation:
    area: str
    period: str
    breakdown: dict[str, str]
    value: float | None
    numerator: float | None
    denominator: float | None
    status: ObsStatus
    conf_status: ConfStatus
    perturbed: bool
    reason: str | None = None  # why a value is flagged or withheld
    interval: tuple[float, float] | None = None  # shown instead of a value near 0% or 100%


class _Seal:
    """Held only by this module: proof that a result went through `release_result`."""


_SEAL: Final = _Seal()


class ReleasedResult:
    """Observations that may be published, with what a data user needs to cite and judge them."""

    __slots__ = ("indicator", "method", "observations", "ptable", "release", "tier")

    def __init__(
        self,
        seal: _Seal,
        release: Release,
        indicator: Indicator,
        tier: Tier,
        method: str,
        ptable: str | None,
        observations: list[ReleasedObservation],
    ) -> None:
        if seal is not _SEAL:
            raise TypeError("a ReleasedResult is made only by app.privacy.released.release_result")
        self.release = release
        self.indicator = indicator
        self.tier = tier
        self.method = method
        self.ptable = ptable
        self.observations = observations


def _publish(c: Computed, indicator: Indicator, tier: Tier) -> ReleasedObservation:
    conf = ConfStatus.FREE if tier is Tier.PUBLIC else ConfStatus.RESTRICTED
    perturbed = not c.exact
    reason: str | None
    if c.value is None:
        reason = "no denominator in this area and period" if c.denominator == 0 else "no value"
        return ReleasedObservation(
            c.area,
            c.period,
            c.breakdown,
            None,
            c.numerator,
            c.denominator,
            ObsStatus.MISSING,
            conf,
            perturbed,
            reason,
        )
    if c.denominator is None:  # a count
        return ReleasedObservation(
            c.area, c.period, c.breakdown, c.value, c.numerator, None, ObsStatus.NORMAL, conf, perturbed
        )
    sensitive = indicator.code in SENSITIVE_INDICATORS and tier is not Tier.INTERNAL
    if sensitive and c.denominator < SUPPRESS_SENSITIVE_BELOW:
        return ReleasedObservation(
            c.area,
            c.period,
            c.breakdown,
            None,
            None,
            None,
            ObsStatus.SUPPRESSED,
            ConfStatus.CONFIDENTIAL,
            perturbed,
            f"sensitive health data on fewer than {SUPPRESS_SENSITIVE_BELOW} persons",
        )
    low = c.numerator < LOW_NUMERATOR or c.denominator < LOW_DENOMINATOR
    if not low or tier is Tier.INTERNAL:
        status = ObsStatus.LOW_RELIABILITY if low else ObsStatus.NORMAL
        reason = _low_reason(c) if low else None
        return ReleasedObservation(
            c.area,
            c.period,
            c.breakdown,
            c.value,
            c.numerator,
            c.denominator,
            status,
            conf,
            perturbed,
            reason,
        )
    if sensitive and (c.value <= EDGE_BAND or c.value >= 100 - EDGE_BAND):
        band = (0.0, EDGE_BAND) if c.value <= EDGE_BAND else (100 - EDGE_BAND, 100.0)
        return ReleasedObservation(
            c.area,
            c.period,
            c.breakdown,
            None,
            None,
            c.denominator,
            ObsStatus.LOW_RELIABILITY,
            conf,
            perturbed,
            f"{_low_reason(c)}; near {'0' if band[0] == 0 else '100'}%, shown as a band",
            band,
        )
    return ReleasedObservation(
        c.area,
        c.period,
        c.breakdown,
        c.value,
        c.numerator,
        c.denominator,
        ObsStatus.LOW_RELIABILITY,
        conf,
        perturbed,
        _low_reason(c),
    )


def _low_reason(c: Computed) -> str:
    return f"low reliability: numerator under {LOW_NUMERATOR} or denominator under {LOW_DENOMINATOR}"


def release_result(
    release: Release,
    indicator: Indicator,
    tier: Tier,
    computed: list[Computed],
    method: str,
    ptable: str | None,
) -> ReleasedResult:
    """Apply the publication rules to computed values: the one way to a publishable result."""
    observations = [_publish(c, indicator, tier) for c in computed]
    return ReleasedResult(_SEAL, release, indicator, tier, method, ptable, observations)

"""Indicator formulas over base measures, exactly as the official catalogue defines them.

Each formula reads the counts of one group of areas for one period through a `Counts` view and
returns value, numerator and denominator. Rates use the average population of the period (monthly
trapezoid over month-end stocks) and are annualised for periods shorter than a year, as GSO's
per-year definitions require.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray

from app.cube import AGES, MAX_AGE, METHODS, Axis
from connectors.canonical import MODERN_METHODS

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_MODERN: Final = np.array([m in MODERN_METHODS for m in METHODS])


@dataclass(frozen=True)
class Slice:
    """The breakdown cell being computed: which sexes and which single-year ages it covers."""

    sex: BoolArray  # shape (2,)
    age: BoolArray  # shape (AGES,)

    @classmethod
    def everyone(cls) -> Slice:
        return cls(np.ones(2, dtype=bool), np.ones(AGES, dtype=bool))


def ages(low: int, high: int | None = None) -> BoolArray:
    """Mask of single years low..high (inclusive; None = up to 100+)."""
    mask = np.zeros(AGES, dtype=bool)
    mask[low : (MAX_AGE if high is None else high) + 1] = True
    return mask


class Counts(Protocol):
    """Counts of the queried areas (summed) for the queried period."""

    years: float

    def stock(self, measure: str) -> FloatArray:
        """At the end of the period."""
        ...

    def average(self, measure: str) -> FloatArray:
        """Average over the period (trapezoid over month-end stocks)."""
        ...

    def flow(self, measure: str) -> FloatArray:
        """Summed over the months of the period."""
        ...

    def urban_population(self) -> FloatArray:
        """Population at the end of the period living in urban communes (phường, thị trấn)."""
        ...

    def bands(self, measure: str, axis: Axis) -> tuple[int, ...]:
        """First values of the bands the measure's counts come in along an axis (all values when exact).

        Counts of a band sit at its first value, so sums over whole bands are right as they stand."""
        ...


@dataclass(frozen=True)
class Value:
    value: float | None
    numerator: float
    denominator: float | None


Formula = Callable[[Counts, Slice], Value]


def _ratio(numerator: float, denominator: float, scale: float) -> Value:
    return Value(numerator / denominator * scale if denominator > 0 else None, numerator, denominator)


def _count(value: float) -> Value:
    return Value(value, value, None)


def _people(array: FloatArray, where: Slice) -> float:
    """Sum of a sex x age array over a slice."""
    return float(array[where.sex][:, where.age].sum())


def _rate(counts: Counts, events: float, population: float, per: float) -> Value:
    """Events per `per` persons per year."""
    return _ratio(events, population * counts.years, per)


def _births_by_mother(counts: Counts, age_mask: BoolArray) -> float:
    births = counts.flow("births")  # sex x mother_age x order
    return float(births[:, age_mask, :].sum())


def pop(c: Counts, s: Slice) -> Value:
    return _count(_people(c.stock("population"), s))


def households(c: Counts, s: Slice) -> Value:
    return _count(float(c.stock("households").sum()))


def average_household_size(c: Counts, s: Slice) -> Value:
    return _ratio(float(c.stock("population").sum()), float(c.stock("households").sum()), 1)


def sex_ratio(c: Counts, s: Slice) -> Value:
    population = c.stock("population")
    return _ratio(float(population[0, s.age].sum()), float(population[1, s.age].sum()), 100)


def births(c: Counts, s: Slice) -> Value:
    return _count(float(c.flow("births")[s.sex].sum()))


def sex_ratio_at_birth(c: Counts, s: Slice) -> Value:
    b = c.flow("births")
    return _ratio(float(b[0].sum()), float(b[1].sum()), 100)


def crude_birth_rate(c: Counts, s: Slice) -> Value:
    return _rate(c, float(c.flow("births").sum()), float(c.average("population").sum()), 1000)


def age_specific_fertility(c: Counts, s: Slice) -> Value:
    """Births to mothers in the slice's ages per 1000 women of those ages (sex of the slice ignored)."""
    band = s.age if not s.age.all() else ages(15, 49)
    women = float(c.average("population")[1, band].sum())
    return _rate(c, _births_by_mother(c, band), women, 1000)


def total_fertility(c: Counts, s: Slice) -> Value:
    """5 x sum of the seven 5-year ASFRs 15-49, per woman."""
    women = c.average("population")[1]
    total, numerator = 0.0, 0.0
    for low in range(15, 50, 5):
        band = ages(low, low + 4)
        exposure = float(women[band].sum()) * c.years
        if exposure <= 0:
            return Value(None, numerator, None)
        born = _births_by_mother(c, band)
        numerator += born
        total += born / exposure
    return Value(5 * total, numerator, float(women[ages(15, 49)].sum()))


def general_fertility(c: Counts, s: Slice) -> Value:
    women = float(c.average("population")[1, ages(15, 49)].sum())
    return _rate(c, float(c.flow("births").sum()), women, 1000)


def third_births(c: Counts, s: Slice) -> Value:
    b = c.flow("births")
    return _ratio(float(b[:, :, 2].sum()), float(b.sum()), 100)


def deaths(c: Counts, s: Slice) -> Value:
    return _count(_people(c.flow("deaths"), s))


def crude_death_rate(c: Counts, s: Slice) -> Value:
    return _rate(c, float(c.flow("deaths").sum()), float(c.average("population").sum()), 1000)


def infant_mortality(c: Counts, s: Slice) -> Value:
    return _ratio(float(c.flow("deaths")[:, 0].sum()), float(c.flow("births").sum()), 1000)


def natural_increase(c: Counts, s: Slice) -> Value:
    change = float(c.flow("births").sum() - c.flow("deaths").sum())
    return _rate(c, change, float(c.average("population").sum()), 1000)


def migrants(measure: str) -> Formula:
    def formula(c: Counts, s: Slice) -> Value:
        return _count(_people(c.flow(measure), s))

    return formula


def migration_rate(sign_in: int, sign_out: int) -> Formula:
    def formula(c: Counts, s: Slice) -> Value:
        moved = sign_in * _people(c.flow("in_migrants"), s) - sign_out * _people(c.flow("out_migrants"), s)
        return _rate(c, moved, _people(c.average("population"), s), 1000)

    return formula


def growth_rate(c: Counts, s: Slice) -> Value:
    change = float(
        c.flow("births").sum()
        - c.flow("deaths").sum()
        + c.flow("in_migrants").sum()
        - c.flow("out_migrants").sum()
    )
    return _rate(c, change, float(c.average("population").sum()), 100)


def married_women(c: Counts, s: Slice) -> Value:
    return _count(float(c.stock("married_women")[s.age].sum()))


def contraceptive_prevalence(modern_only: bool) -> Formula:
    def formula(c: Counts, s: Slice) -> Value:
        users = c.stock("contraceptive_users")  # method x age
        chosen = users[_MODERN] if modern_only else users
        return _ratio(float(chosen[:, s.age].sum()), float(c.stock("married_women")[s.age].sum()), 100)

    return formula


def event_count(measure: str) -> Formula:
    def formula(c: Counts, s: Slice) -> Value:
        return _count(float(c.flow(measure).sum()))

    return formula


def crude_marriage_rate(c: Counts, s: Slice) -> Value:
    return _rate(c, float(c.flow("marriages").sum()), float(c.average("population").sum()), 1000)


def urban_share(c: Counts, s: Slice) -> Value:
    return _ratio(float(c.urban_population().sum()), float(c.stock("population").sum()), 100)


def age_share(low: int, high: int | None) -> Formula:
    def formula(c: Counts, s: Slice) -> Value:
        population = c.stock("population")[s.sex]
        return _ratio(float(population[:, ages(low, high)].sum()), float(population.sum()), 100)

    return formula


def dependency(
    numerator_bands: list[tuple[int, int | None]], denominator_band: tuple[int, int | None]
) -> Formula:
    def formula(c: Counts, s: Slice) -> Value:
        population = c.stock("population").sum(axis=0)
        top = sum(float(population[ages(low, high)].sum()) for low, high in numerator_bands)
        return _ratio(top, float(population[ages(*denominator_band)].sum()), 100)

    return formula


def median_age(c: Counts, s: Slice) -> Value:
    """The age splitting the population in halves, interpolated linearly within its age band."""
    by_age = c.stock("population")[s.sex].sum(axis=0)
    total = float(by_age.sum())
    if total <= 0:
        return Value(None, 0.0, None)
    starts = [*c.bands("population", Axis.AGE), AGES]
    cumulative = 0.0
    for low, high in itertools.pairwise(starts):
        inside = float(by_age[low:high].sum())
        if cumulative + inside >= total / 2 and inside > 0:
            # The open 100+ band is taken as one year wide, as a single-year table would.
            width = high - low if high < AGES else 1
            return Value(low + (total / 2 - cumulative) / inside * width, total / 2, total)
        cumulative += inside
    return Value(float(MAX_AGE), total / 2, total)


FORMULAS: Final[dict[str, Formula]] = {
    "POP": pop,
    "HH": households,
    "AHS": average_household_size,
    "SR": sex_ratio,
    "SRB": sex_ratio_at_birth,
    "BIRTHS": births,
    "CBR": crude_birth_rate,
    "ASFR": age_specific_fertility,
    "TFR": total_fertility,
    "GFR": general_fertility,
    "BIRTH3": third_births,
    "DEATHS": deaths,
    "CDR": crude_death_rate,
    "IMR": infant_mortality,
    "NIR": natural_increase,
    "IN_MIGRANTS": migrants("in_migrants"),
    "OUT_MIGRANTS": migrants("out_migrants"),
    "IR": migration_rate(1, 0),
    "OR": migration_rate(0, -1),
    "NMR": migration_rate(1, 1),
    "GR": growth_rate,
    "MWRA": married_women,
    "CPR": contraceptive_prevalence(modern_only=False),
    "CPR_MODERN": contraceptive_prevalence(modern_only=True),
    "MAR": event_count("marriages"),
    "CMR": crude_marriage_rate,
    "DIV": event_count("divorces"),
    "URB": urban_share,
    "AGE_0_14": age_share(0, 14),
    "AGE_15_64": age_share(15, 64),
    "AGE_65P": age_share(65, None),
    "AGE_60P": age_share(60, None),
    "DR_CHILD": dependency([(0, 14)], (15, 64)),
    "DR_OLD": dependency([(65, None)], (15, 64)),
    "DR_TOTAL": dependency([(0, 14), (65, None)], (15, 64)),
    "AI": dependency([(60, None)], (0, 14)),
    "MEDIAN_AGE": median_age,
}

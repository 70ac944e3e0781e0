"""Publication rules of released results, and that only the privacy layer can make one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.models import Indicator, Release
from app.privacy.released import (
    Computed,
    ConfStatus,
    ObsStatus,
    ReleasedObservation,
    ReleasedResult,
    _Seal,
    release_result,
)
from app.query.service import TooSparse, _check_sparsity
from auth.principal import Tier

RELEASE = Release(
    id="r1", kind="register", created_at=datetime(2025, 7, 1, tzinfo=UTC), synthetic=True, first_month=0,
    last_month=1, geographies="vn-2025-01", sources="[]", row_counts="{}", input_hash="x",
)  # fmt: skip


def indicator(code: str) -> Indicator:
    return Indicator(
        code=code, official_code=code, name_vi=code, name_en=code, official_name_vi=code, official_name_en=code,
        definition="", formula="", unit_vi="%", unit_en="%", decimals=1, topic="t", dimensions="age",
        periodicity="year", official_disaggregations="", official_periodicity="", legal_basis="", source="",
        supported=True,
    )  # fmt: skip


def one(
    code: str, value: float | None, numerator: float, denominator: float | None, tier: Tier = Tier.PUBLIC
) -> ReleasedObservation:
    computed = [Computed("07201", "2024", {}, value, numerator, denominator, exact=False)]
    return release_result(RELEASE, indicator(code), tier, computed, "m", "p").observations[0]


def test_counts_are_published_as_they_are() -> None:
    o = one("POP", 3, 3, None)
    assert (o.value, o.status, o.conf_status, o.perturbed) == (3, ObsStatus.NORMAL, ConfStatus.FREE, True)


def test_rates_on_small_numbers_are_flagged_low_reliability() -> None:
    assert one("CBR", 15.0, 30, 2000).status is ObsStatus.NORMAL
    low = one("CBR", 15.0, 15, 1000)
    assert low.status is ObsStatus.LOW_RELIABILITY
    assert "numerator under 20" in (low.reason or "")
    assert one("CBR", 150.0, 30, 200).status is ObsStatus.NORMAL
    assert one("CBR", 300.0, 30, 99).status is ObsStatus.LOW_RELIABILITY


def test_sensitive_prevalence_is_suppressed_on_small_bases_and_banded_near_the_edges() -> None:
    suppressed = one("CPR", 70.0, 12, 17)
    assert suppressed.status is ObsStatus.SUPPRESSED
    assert (suppressed.value, suppressed.numerator, suppressed.denominator) == (None, None, None)
    assert suppressed.conf_status is ConfStatus.CONFIDENTIAL
    banded = one("CPR", 97.0, 58, 60)
    assert banded.value is None
    assert banded.interval == (95.0, 100.0)
    assert banded.status is ObsStatus.LOW_RELIABILITY
    assert one("CPR", 70.0, 42, 60).value == 70.0  # low reliability, shown
    assert one("CPR", 70.0, 12, 17, Tier.INTERNAL).value == 70.0  # the office sees it


def test_a_missing_denominator_is_missing_and_departments_are_restricted() -> None:
    missing = one("CBR", None, 0, 0)
    assert missing.status is ObsStatus.MISSING
    assert one("POP", 10, 10, None, Tier.DEPARTMENT).conf_status is ConfStatus.RESTRICTED


def test_only_the_privacy_layer_makes_a_released_result() -> None:
    with pytest.raises(TypeError, match="release_result"):
        ReleasedResult(_Seal(), RELEASE, indicator("POP"), Tier.PUBLIC, "m", None, [])


def test_a_department_table_of_mostly_tiny_cells_is_refused() -> None:
    tiny = [Computed(str(i), "2024", {}, 3.0 if i < 8 else 40.0, 3.0, None, False) for i in range(12)]
    with pytest.raises(TooSparse) as refused:
        _check_sparsity(tiny)
    assert refused.value.extensions == {"tiny_cells": 8, "nonzero_cells": 12}
    _check_sparsity(tiny[6:])  # 2 of 6 tiny, and too few cells to judge
    _check_sparsity([Computed(str(i), "2024", {}, 40.0, 40.0, None, False) for i in range(20)])

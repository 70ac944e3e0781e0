"""The atom lattice as configured: every official indicator is public somewhere, and finer asks are refused."""

from __future__ import annotations

import pytest

from app.query.indicators import FORMULAS
from app.query.periods import parse_periods
from app.query.plan import INDICATOR_READS, FinerThanPublished, choose, needs
from auth.principal import Tier

# As a release note lists them: provinces are unions of whole districts, and of themselves.
PROVINCES = {"province": {"24", "38"}, "district": {"213", "24", "38"}}


def test_every_formula_declares_what_it_reads() -> None:
    assert set(INDICATOR_READS) == set(FORMULAS)


@pytest.mark.parametrize("indicator", sorted(FORMULAS))
def test_every_indicator_is_public_for_a_province_and_a_year(indicator: str) -> None:
    periods = parse_periods("2023")
    for measure, need in needs(indicator, periods, [], slice_by_sex=False).items():
        chosen = choose(Tier.PUBLIC, need, ["24"], PROVINCES)
        assert chosen.measure.name == measure


def test_tfr_is_public_at_province_level_from_the_mother_age_atoms() -> None:
    wanted = needs("TFR", parse_periods("2024"), [], slice_by_sex=False)
    births = choose(Tier.PUBLIC, wanted["births"], ["38"], PROVINCES)
    assert births.name == "births.mother_age5.year.province"
    with pytest.raises(FinerThanPublished) as refused:
        choose(Tier.PUBLIC, wanted["births"], ["213"], PROVINCES)  # a district: no public mother's age
    assert "mother_age bands starting at 0,5,10" in refused.value.detail
    assert choose(Tier.DEPARTMENT, wanted["births"], ["213"], PROVINCES).name.startswith(
        "births.sex.mother_age5"
    )


def test_single_years_and_months_are_department_detail() -> None:
    single = needs("POP", parse_periods("2024"), [(17, 17)], slice_by_sex=True)["population"]
    with pytest.raises(FinerThanPublished) as refused:
        choose(Tier.PUBLIC, single, ["07201"], PROVINCES)
    assert refused.value.extensions["allowed"][0]["band_edges"]["age"][:3] == [0, 5, 10]
    assert choose(Tier.DEPARTMENT, single, ["07201"], PROVINCES).name == "population.sex.age1.month"
    monthly_births = needs("BIRTHS", parse_periods("2024-03"), [], slice_by_sex=False)["births"]
    assert choose(Tier.PUBLIC, monthly_births, ["24"], PROVINCES).name == "births.sex.month.province"
    with pytest.raises(FinerThanPublished):
        choose(Tier.PUBLIC, monthly_births, ["07201"], PROVINCES)


def test_contraception_is_published_coarser_than_other_measures() -> None:
    by_band = needs("CPR", parse_periods("2023"), [(25, 34)], slice_by_sex=False)
    assert choose(Tier.PUBLIC, by_band["contraceptive_users"], ["07201"], PROVINCES).name.endswith(
        "age3.year"
    )
    with pytest.raises(FinerThanPublished):
        choose(
            Tier.PUBLIC,
            needs("CPR", parse_periods("2023"), [(25, 29)], False)["contraceptive_users"],
            ["24"],
            PROVINCES,
        )
    with pytest.raises(FinerThanPublished):
        choose(
            Tier.PUBLIC,
            needs("CPR", parse_periods("2023-Q2"), [], False)["contraceptive_users"],
            ["24"],
            PROVINCES,
        )

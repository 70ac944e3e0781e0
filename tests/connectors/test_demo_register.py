"""The synthetic demo register: canonical shape, calibration to the 2019 census, plausible rates, consistent events."""

from __future__ import annotations

from datetime import date
from functools import cache

import polars as pl

from connectors.canonical import EVENT_COLUMNS, HOUSEHOLD_COLUMNS, MODERN_METHODS, PERSON_COLUMNS, column_type
from connectors.demo_register import (
    COMMUNE_CENSUS_FILE,
    UNITS_FILE,
    DemoRegister,
    generate_register,
)

RATE_SCALE = 0.03  # about 160,000 persons and 11,000 births: rates within a few percent
START, END = date(2021, 1, 1), date(2025, 7, 1)
YEARS = 4.5


@cache
def register(scale: float = RATE_SCALE, seed: int = 7) -> DemoRegister:
    return generate_register(scale, seed)


@cache
def commune_provinces() -> dict[str, str]:
    units = pl.read_csv(UNITS_FILE, schema_overrides={"code": pl.String, "parent_code": pl.String})
    districts = units.filter(pl.col("level") == "district").select("code", province="parent_code")
    communes = units.filter(pl.col("level") == "commune").join(
        districts, left_on="parent_code", right_on="code"
    )
    return dict(
        communes.filter(pl.col("province").is_in(["24", "38"])).select("code", "province").iter_rows()
    )


def spans(r: DemoRegister) -> pl.DataFrame:
    """Each person's time in the register: [entry, exit), with sex and birth date."""
    entries = pl.concat(
        [
            r.persons.select("person_id", "sex", "birth_date", entry=pl.lit(START)),
            r.events.filter(
                (pl.col("event_type") == "birth")
                | ((pl.col("event_type") == "move_in") & pl.col("origin_area_code").is_null())
            ).select("person_id", "sex", "birth_date", entry="event_date"),
        ]
    )
    exits = r.events.filter(
        (pl.col("event_type") == "death")
        | ((pl.col("event_type") == "move_out") & pl.col("destination_area_code").is_null())
    ).select("person_id", exit="event_date")
    return entries.join(exits, on="person_id", how="left").with_columns(pl.col("exit").fill_null(END))


def age(on: str, born: str) -> pl.Expr:
    """Completed years on date column `on` (someone born on 29 February has birthdays on 1 March)."""
    before_birthday = (
        pl.col(on).dt.month().cast(pl.Int32) * 100 + pl.col(on).dt.day()
        < pl.col(born).dt.month().cast(pl.Int32) * 100 + pl.col(born).dt.day()
    )
    return pl.col(on).dt.year().cast(pl.Int32) - pl.col(born).dt.year() - before_birthday.cast(pl.Int32)


def person_years(frame: pl.DataFrame) -> float:
    days = (frame["exit"] - frame["entry"]).dt.total_days().sum()
    return float(days) / 365.25


def count(r: DemoRegister, event_type: str) -> int:
    return r.events.filter(pl.col("event_type") == event_type).height


def test_tables_have_the_canonical_columns_and_types() -> None:
    r = register(0.002, 1)
    for frame, columns in (
        (r.households, HOUSEHOLD_COLUMNS),
        (r.persons, PERSON_COLUMNS),
        (r.events, EVENT_COLUMNS),
    ):
        assert frame.columns == list(columns)
        assert [str(dtype) for dtype in frame.dtypes] == [column_type(c) for c in columns]
        assert frame["geography"].unique().to_list() == ["vn-2025-01"]
    assert r.reference_date == date(2020, 12, 31)
    assert r.geography == "vn-2025-01"
    assert set(r.events["event_type"].unique()) == {
        "birth",
        "death",
        "move_in",
        "move_out",
        "marriage",
        "divorce",
        "contraception_change",
        "household_formed",
        "household_dissolved",
    }


def test_a_seed_gives_the_same_register_and_another_seed_a_different_one() -> None:
    first, again, other = (
        generate_register(0.002, 11),
        generate_register(0.002, 11),
        generate_register(0.002, 12),
    )
    for name in ("households", "persons", "events"):
        assert getattr(first, name).equals(getattr(again, name))
    assert not first.persons.equals(other.persons)
    assert not first.events.equals(other.events)


def test_persons_per_province_match_the_census() -> None:
    census = pl.read_csv(COMMUNE_CENSUS_FILE, schema_overrides={"province_code_2019": pl.String})
    totals = dict(
        census.filter(pl.col("level") == "province").select("province_code_2019", "total").iter_rows()
    )
    persons = register().persons.with_columns(
        province=pl.col("area_code").replace_strict(commune_provinces())
    )
    counted = dict(persons.group_by("province").len().iter_rows())
    assert set(counted) == {"24", "38"}
    for province in ("24", "38"):
        expected = RATE_SCALE * totals[province]
        assert abs(counted[province] - expected) <= 0.01 * expected


def test_every_area_is_a_commune_of_the_two_provinces() -> None:
    r = register()
    communes = set(commune_provinces())
    areas = set(r.persons["area_code"]) | set(r.households["area_code"]) | set(r.events["area_code"])
    moves = r.events.select(
        pl.concat_list("origin_area_code", "destination_area_code").explode().drop_nulls()
    )
    assert areas | set(moves.to_series()) <= communes
    assert r.events["area_code"].null_count() == 0
    # The register covers most communes even at this scale.
    assert len(set(r.persons["area_code"])) > 0.95 * len(communes)


def test_rates_over_the_period_are_those_of_viet_nam() -> None:
    r = register()
    population = person_years(spans(r)) / YEARS  # average population
    births = r.events.filter(pl.col("event_type") == "birth")
    cbr = count(r, "birth") / population / YEARS * 1000
    cdr = count(r, "death") / population / YEARS * 1000
    marriage_rate = count(r, "marriage") / population / YEARS * 1000
    divorce_rate = count(r, "divorce") / population / YEARS * 1000
    srb = int((births["sex"] == 1).sum()) / int((births["sex"] == 2).sum()) * 100
    infant_deaths = (
        r.events.filter(pl.col("event_type") == "death")
        .join(births.select("person_id", born="event_date"), on="person_id")
        .filter((pl.col("event_date") - pl.col("born")).dt.total_days() < 365)
    )
    imr = infant_deaths.height / births.height * 1000
    assert 13 <= cbr <= 19
    assert 5 <= cdr <= 8
    assert 105 <= srb <= 118
    assert 8 <= imr <= 20
    assert 6 <= marriage_rate <= 9
    assert 0.4 <= divorce_rate <= 1.2
    assert 3.2 <= r.persons.height / r.households.height <= 3.9


def test_fertility_is_about_replacement_with_a_peak_at_25_29() -> None:
    r = register()
    women = spans(r).filter(pl.col("sex") == 2)
    births = r.events.filter(pl.col("event_type") == "birth").with_columns(
        mother_age=age("event_date", "mother_birth_date")
    )
    entry, exit_, born = (women[c].cast(pl.Int32).cast(pl.Float64) for c in ("entry", "exit", "birth_date"))
    rates = {}
    for low in range(15, 50, 5):
        start, stop = born + low * 365.25, born + (low + 5) * 365.25
        exposure = float(
            ((exit_.zip_with(exit_ < stop, stop)) - entry.zip_with(entry > start, start)).clip(0).sum()
        )
        mothers = births.filter(pl.col("mother_age").is_between(low, low + 4)).height
        rates[low] = mothers / (exposure / 365.25)
    tfr = 5 * sum(rates.values())
    assert 1.8 <= tfr <= 2.4
    assert max(rates, key=rates.__getitem__) == 25
    assert births["mother_age"].min() == 15
    assert 45 <= births["mother_age"].max() <= 49  # type: ignore[operator]


def test_snapshot_households_marital_status_and_contraception_are_plausible() -> None:
    persons = register().persons.with_columns(
        age=pl.date(2020, 12, 31).dt.year() - pl.col("birth_date").dt.year()  # on 31 December: exact
    )
    assert set(persons["household_id"]) == set(register().households["household_id"])
    assert persons.group_by("household_id").agg(pl.col("area_code").n_unique())["area_code"].max() == 1
    users = persons.filter(pl.col("contraceptive_method").is_not_null())
    assert users.filter(
        (pl.col("sex") != 2) | (pl.col("marital_status") != "married") | ~pl.col("age").is_between(15, 49)
    ).is_empty()
    wives = persons.filter(
        (pl.col("sex") == 2) & (pl.col("marital_status") == "married") & pl.col("age").is_between(15, 49)
    )
    modern = [m.value for m in MODERN_METHODS]
    assert 0.72 <= wives["contraceptive_method"].is_not_null().mean() <= 0.80  # type: ignore[operator]
    assert 0.62 <= wives["contraceptive_method"].is_in(modern).fill_null(False).mean() <= 0.70  # type: ignore[operator]
    assert 0.45 <= (users["contraceptive_method"] == "iud").mean() <= 0.55  # type: ignore[operator]
    married_30s = persons.filter(pl.col("age").is_between(30, 39))
    assert (married_30s["marital_status"] == "married").mean() > 0.8  # type: ignore[operator]
    widows = persons.filter((pl.col("age") >= 75) & (pl.col("sex") == 2))
    assert (widows["marital_status"] == "widowed").mean() > 0.4  # type: ignore[operator]
    assert 95 <= int((persons["sex"] == 1).sum()) / int((persons["sex"] == 2).sum()) * 100 <= 102


def test_ids_are_unique_and_events_fall_in_the_period() -> None:
    r = register()
    events = r.events
    assert events["event_id"].is_unique().all()
    assert r.persons["person_id"].is_unique().all()
    newcomers = events.filter(
        (pl.col("event_type") == "birth")
        | ((pl.col("event_type") == "move_in") & pl.col("origin_area_code").is_null())
    )["person_id"]
    assert newcomers.is_unique().all()
    assert not set(newcomers) & set(r.persons["person_id"])
    assert events["event_date"].min() >= START  # type: ignore[operator]
    assert events["event_date"].max() <= date(2025, 6, 30)  # type: ignore[operator]
    assert events["event_id"].to_list() == sorted(events["event_id"])
    assert events["event_date"].is_sorted()


def test_nobody_has_an_event_outside_their_time_in_the_register() -> None:
    r = register()
    known = spans(r).select("person_id", "birth_date", "entry", "exit")
    assert known["person_id"].is_unique().all()  # no one enters twice or dies twice
    events = r.events.filter(pl.col("person_id").is_not_null()).join(known, on="person_id", how="left")
    assert events["entry"].null_count() == 0  # every person with an event is in the register
    assert events.filter(pl.col("event_date") < pl.col("birth_date")).is_empty()
    assert events.filter(
        (pl.col("event_date") < pl.col("entry")) | (pl.col("event_date") > pl.col("exit"))
    ).is_empty()
    # A death or a move out of the register is the person's last event; a birth or arrival the first.
    order = events.with_columns(
        last=pl.col("event_id") == pl.col("event_id").max().over("person_id"),
        first=pl.col("event_id") == pl.col("event_id").min().over("person_id"),
    )
    leaving = (pl.col("event_type") == "death") | (
        (pl.col("event_type") == "move_out") & pl.col("destination_area_code").is_null()
    )
    arriving = (pl.col("event_type") == "birth") | (
        (pl.col("event_type") == "move_in") & pl.col("origin_area_code").is_null()
    )
    assert order.filter(leaving & ~pl.col("last")).is_empty()
    assert order.filter(arriving & ~pl.col("first")).is_empty()
    # Spouses and mothers are in the register on the day too.
    for column in ("spouse_id", "mother_id"):
        other = r.events.filter(pl.col(column).is_not_null()).join(
            known, left_on=column, right_on="person_id"
        )
        assert other.height == r.events[column].drop_nulls().len()
        assert other.filter(
            (pl.col("event_date") < pl.col("entry")) | (pl.col("event_date") > pl.col("exit"))
        ).is_empty()


def test_events_happen_where_the_person_lives() -> None:
    r = register()
    events = (
        r.events.filter(pl.col("person_id").is_not_null())
        .sort("event_id")
        .join(r.persons.select("person_id", snapshot_area="area_code"), on="person_id", how="left")
        .with_columns(
            home=pl.when(pl.col("event_type").is_in(["birth", "move_in"])).then(pl.col("area_code")),
        )
        .with_columns(before=pl.col("home").forward_fill().shift(1).over("person_id", order_by="event_id"))
        .with_columns(before=pl.coalesce("before", "snapshot_area"))
    )
    staying = events.filter(~pl.col("event_type").is_in(["birth", "move_in"]))
    assert staying.filter(pl.col("area_code") != pl.col("before")).is_empty()
    moves_in = events.filter((pl.col("event_type") == "move_in") & pl.col("origin_area_code").is_not_null())
    assert moves_in.filter(pl.col("origin_area_code") != pl.col("before")).is_empty()
    # A move between two communes of the register is a move_out and a move_in on the same day.
    pairs = (
        r.events.filter(pl.col("event_type") == "move_out", pl.col("destination_area_code").is_not_null())
        .select("person_id", "event_date", area="destination_area_code", origin="area_code")
        .join(
            moves_in.select("person_id", "event_date", area="area_code", origin="origin_area_code"),
            on=["person_id", "event_date", "area", "origin"],
        )
    )
    assert (
        pairs.height
        == moves_in.height
        == count(r, "move_out")
        - r.events.filter(
            (pl.col("event_type") == "move_out") & pl.col("destination_area_code").is_null()
        ).height
    )


def test_type_specific_fields() -> None:
    r = register()
    events = r.events
    births = events.filter(pl.col("event_type") == "birth")
    assert (
        births.select("household_id", "sex", "birth_date", "mother_id", "mother_birth_date", "birth_order")
        .null_count()
        .sum_horizontal()
        .item()
        == 0
    )
    assert (births["birth_date"] == births["event_date"]).all()
    assert births["birth_order"].min() == 1
    mothers_age = births.select(age("event_date", "mother_birth_date")).to_series()
    assert mothers_age.is_between(15, 49).all()
    # The mother's birth date is hers, and she is a woman.
    known = pl.concat(
        [
            r.persons.select("person_id", "sex", "birth_date"),
            events.filter(pl.col("sex").is_not_null()).select("person_id", "sex", "birth_date"),
        ]
    )
    mothers = births.join(known, left_on="mother_id", right_on="person_id", suffix="_mother")
    assert mothers.height == births.height
    assert (mothers["birth_date_mother"] == mothers["mother_birth_date"]).all()
    assert (mothers["sex_mother"] == 2).all()

    couples = events.filter(pl.col("event_type").is_in(["marriage", "divorce"]))
    assert couples["spouse_id"].null_count() == 0
    sexes = couples.join(known, on="person_id").join(
        known, left_on="spouse_id", right_on="person_id", suffix="_spouse"
    )
    assert sexes.height == couples.height
    assert (sexes["sex"] != sexes["sex_spouse"]).all()

    arrivals = events.filter((pl.col("event_type") == "move_in") & pl.col("origin_area_code").is_null())
    assert arrivals.select("sex", "birth_date", "household_id").null_count().sum_horizontal().item() == 0
    household_events = events.filter(pl.col("event_type").is_in(["household_formed", "household_dissolved"]))
    assert household_events["person_id"].null_count() == household_events.height
    assert household_events["household_id"].null_count() == 0
    # Households dissolve once, and only ones that existed.
    dissolved = household_events.filter(pl.col("event_type") == "household_dissolved")["household_id"]
    formed = household_events.filter(pl.col("event_type") == "household_formed")["household_id"]
    assert dissolved.is_unique().all()
    assert set(dissolved) <= set(formed) | set(r.households["household_id"])
    changes = events.filter(pl.col("event_type") == "contraception_change")
    assert set(changes["contraceptive_method"].drop_nulls()) <= {m.value for m in MODERN_METHODS} | {
        "traditional"
    }
    assert changes.join(known, on="person_id").filter(pl.col("sex") != 2).is_empty()

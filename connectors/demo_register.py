"""Generates a synthetic (entirely invented) population register of Bắc Giang and Thanh Hóa, calibrated to the real 2019 census."""

from __future__ import annotations

import csv
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from connectors.canonical import (
    EVENT_COLUMNS,
    HOUSEHOLD_COLUMNS,
    PERSON_COLUMNS,
    ContraceptiveMethod,
    EventType,
    column_type,
)

DATA_DIR: Final = Path(__file__).parent / "data"
CENSUS_DIR: Final = DATA_DIR / "census2019"
UNITS_FILE: Final = DATA_DIR / "geography" / "units_vn-2025-01.csv"
COMMUNE_CENSUS_FILE: Final = CENSUS_DIR / "census2019_population_bacgiang_thanhhoa_district_commune.csv"
AGE_CENSUS_FILE: Final = CENSUS_DIR / "census2019_population_by_age_urbanrural_district.csv"

GEOGRAPHY: Final = "vn-2025-01"
PROVINCES: Final = ("24", "38")  # Bắc Giang, Thanh Hóa
REFERENCE_DATE: Final = date(2020, 12, 31)
FIRST_MONTH: Final = date(2021, 1, 1)
LAST_MONTH: Final = date(2025, 6, 1)
URBAN_UNIT_TYPES: Final = frozenset({"phường", "thị trấn"})

Ints = NDArray[np.signedinteger[Any]]  # indices and day numbers, stored in 8 to 32 bits
F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]

EPOCH: Final = date(1970, 1, 1)
YEAR_DAYS: Final = 365.2425
MAX_AGE: Final = 100
AGES: Final = np.arange(MAX_AGE + 1)
AGE_GROUPS: Final = 18  # 0-4, 5-9, ..., 80-84, 85+

SINGLE, MARRIED, WIDOWED, DIVORCED = 0, 1, 2, 3
MARITAL_STATUS_NAMES: Final = ("single", "married", "widowed", "divorced")
MALE, FEMALE = 1, 2
NO_METHOD: Final = -1
NONE: Final = -1  # missing index (person, commune, household, method) in the integer columns
NO_DAY: Final = int(np.iinfo(np.int32).min)  # missing date (-1 is 31 December 1969)

EVENT_TYPES: Final = tuple(EventType)
METHODS: Final = tuple(ContraceptiveMethod)
METHOD_INDEX: Final = {m: i for i, m in enumerate(METHODS)}
STERILIZATION: Final = np.array(
    [m in (ContraceptiveMethod.FEMALE_STERILIZATION, ContraceptiveMethod.MALE_STERILIZATION) for m in METHODS]
)
TRADITIONAL: Final = METHOD_INDEX[ContraceptiveMethod.TRADITIONAL]


def _curve(points: list[tuple[int, float]], log: bool = False) -> F64:
    """A schedule by single year of age 0..100, interpolated between (age, value) points."""
    x = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    if log:
        return np.exp(np.interp(AGES, x, np.log(y)))
    return np.interp(AGES, x, y)


# Sex ratio (males per 100 females) by age, shape of the 2019 census pyramid: 111 at 0-4 from
# sex-selective births, near parity at 40, women the large majority among the oldest.
SEX_RATIO: Final = _curve(
    [(2, 111), (12, 110), (17, 108), (22, 104), (27, 102), (37, 101), (42, 100), (47, 98), (52, 95),
     (57, 90), (62, 86), (67, 82), (72, 74), (77, 66), (82, 56), (90, 42)]
)  # fmt: skip
SRB: Final = 111.5  # boys per 100 girls at birth, 2019 census

# Annual death rates by age: the shape of Viet Nam's life tables (men die much younger than women),
# at the level of GSO's crude death rate of about 6.3 per 1000 (e0 about 73 for men, 80 for women,
# close to UN WPP; GSO's own life table puts women lower). Age 0 applies to infants already in the
# snapshot, past the neonatal period; infants born in the simulation follow INFANT_MORTALITY.
DEATH_RATE: Final = {
    MALE: _curve(
        [(0, 0.006), (1, 0.001), (5, 0.0003), (10, 0.00025), (15, 0.0005), (20, 0.001), (30, 0.0015),
         (40, 0.0027), (50, 0.0058), (60, 0.0124), (70, 0.0285), (80, 0.066), (90, 0.152), (100, 0.32)],
        log=True,
    ),
    FEMALE: _curve(
        [(0, 0.005), (1, 0.0008), (5, 0.0002), (10, 0.00017), (15, 0.00025), (20, 0.00033), (30, 0.00048),
         (40, 0.00095), (50, 0.0025), (60, 0.0058), (70, 0.0157), (80, 0.0456), (90, 0.122), (100, 0.285)],
        log=True,
    ),
}  # fmt: skip
INFANT_MORTALITY: Final = 0.0136  # GSO 2021: 13.6 per 1000 live births
NEONATAL_SHARE: Final = 0.6  # about 60% of infant deaths in the first 28 days (UNICEF Viet Nam)

# Age-specific fertility rates (births per woman per year), the 2019 census age pattern (peak at
# 25-29, few births after 40) at a TFR a little above the national 2.09 (2019) and 2.11 (2021), as
# both provinces have more children than the national average.
TFR: Final = 2.16
FERTILITY_SHAPE: Final = _curve(
    [(14, 0.0), (15, 0.008), (17, 0.025), (19, 0.06), (21, 0.11), (23, 0.13), (25, 0.138), (27, 0.14),
     (29, 0.128), (31, 0.10), (33, 0.08), (35, 0.055), (37, 0.038), (39, 0.022), (41, 0.012), (43, 0.006),
     (45, 0.002), (48, 0.0005), (49, 0.0)]
)  # fmt: skip
ASFR: Final = FERTILITY_SHAPE * TFR / FERTILITY_SHAPE.sum()
# Relative chance of a birth: mostly married women, lower at parity 2+ (two-child norm), much lower
# with a method, none within 15 months of the previous birth.
BIRTH_WEIGHT_UNMARRIED: Final = 0.02
BIRTH_WEIGHT_PARITY: Final = np.array([1.4, 1.2, 0.35, 0.2])
BIRTH_WEIGHT_MODERN: Final = 0.05
BIRTH_WEIGHT_TRADITIONAL: Final = 0.3
BIRTH_INTERVAL_DAYS: Final = 450

# Share currently married by age, 2019 census: women marry about 4 years younger than men, and
# widowhood leaves older women mostly unmarried. Wives follow the women's share; the men's share
# weighs who among the men are their husbands.
MARRIED_SHARE: Final = {
    MALE: _curve(
        [(17, 0.0), (18, 0.01), (20, 0.06), (22, 0.2), (25, 0.45), (27, 0.62), (30, 0.8), (35, 0.9),
         (40, 0.93), (60, 0.93), (65, 0.91), (70, 0.88), (75, 0.84), (80, 0.74), (90, 0.6)]
    ),
    FEMALE: _curve(
        [(14, 0.0), (16, 0.02), (18, 0.1), (20, 0.3), (22, 0.48), (25, 0.7), (27, 0.8), (30, 0.87),
         (35, 0.9), (45, 0.89), (50, 0.87), (55, 0.83), (60, 0.77), (65, 0.68), (70, 0.57), (75, 0.44),
         (80, 0.3), (90, 0.15)]
    ),
}  # fmt: skip
# Among the unmarried: who is widowed and who divorced (the rest never married).
WIDOWED_SHARE: Final = {
    MALE: _curve([(30, 0.0), (40, 0.03), (50, 0.15), (60, 0.4), (70, 0.7), (80, 0.85)]),
    FEMALE: _curve([(25, 0.0), (35, 0.05), (45, 0.25), (55, 0.5), (65, 0.75), (75, 0.9)]),
}
DIVORCED_SHARE: Final = {
    MALE: _curve([(22, 0.0), (30, 0.1), (45, 0.25), (55, 0.25), (65, 0.15), (75, 0.05)]),
    FEMALE: _curve([(20, 0.0), (30, 0.2), (45, 0.3), (55, 0.25), (65, 0.12), (75, 0.04)]),
}

# Annual marriage hazards of unmarried women (crude marriage rate about 7-8 per 1000, mean age at
# first marriage of women about 23, 2019 census).
MARRIAGE_RATE: Final = _curve(
    [(15, 0.0), (16, 0.015), (18, 0.085), (20, 0.22), (23, 0.29), (27, 0.24), (30, 0.17), (35, 0.085),
     (40, 0.035), (50, 0.012), (60, 0.002), (70, 0.0)]
)  # fmt: skip
REMARRIAGE_FACTOR: Final = 0.3
HUSBAND_AGE_GAP: Final = (3.5, 3.0)  # mean, sd in years
NEW_HOUSEHOLD_AT_MARRIAGE: Final = 0.3  # most couples start with the husband's parents
# Annual divorce hazard of a couple by the husband's age (crude divorce rate about 0.7 per 1000).
DIVORCE_RATE: Final = _curve(
    [(20, 0.002), (30, 0.005), (40, 0.0045), (50, 0.0025), (60, 0.001), (70, 0.0003)]
)

# Contraception among married women 15-49 (MICS 2014, PCFP 2020): about 76% use a method, 66% a
# modern one; the IUD is half of all use.
CPR_BY_AGE: Final = _curve([(15, 0.45), (20, 0.58), (25, 0.7), (30, 0.8), (35, 0.83), (42, 0.83), (49, 0.72)])
METHOD_MIX: Final = {
    ContraceptiveMethod.IUD: 0.5,
    ContraceptiveMethod.PILL: 0.175,
    ContraceptiveMethod.CONDOM: 0.125,
    ContraceptiveMethod.TRADITIONAL: 0.13,
    ContraceptiveMethod.INJECTABLE: 0.03,
    ContraceptiveMethod.FEMALE_STERILIZATION: 0.025,
    ContraceptiveMethod.IMPLANT: 0.01,
    ContraceptiveMethod.MALE_STERILIZATION: 0.005,
}
NEWLYWED_MIX: Final = {
    ContraceptiveMethod.CONDOM: 0.45,
    ContraceptiveMethod.PILL: 0.45,
    ContraceptiveMethod.TRADITIONAL: 0.1,
}
START_AT_MARRIAGE: Final = 0.15  # most newlyweds want a first child soon
STOP_RATE: Final = 0.010  # per month: discontinuation, mostly to have a child
SWITCH_RATE: Final = 0.005  # per month
CPR_CATCH_UP: Final = 0.25  # share of the gap to the target prevalence closed in a month

# Migration (2019 census and GSO surveys: a few percent move each year, most at 18-35).
MOVE_RATE: Final = _curve(
    [(14, 0.0), (15, 0.01), (18, 0.05), (22, 0.07), (27, 0.055), (32, 0.035), (37, 0.02), (45, 0.01),
     (55, 0.006), (65, 0.004), (100, 0.003)]
)  # fmt: skip
MARRIED_MOVE_FACTOR: Final = 0.35
HOUSEHOLD_MOVE_RATE: Final = 0.004
# Where movers go: another commune of the same province, the other register province, or outside.
MOVE_SPLIT_PERSON: Final = (0.45, 0.03)
MOVE_SPLIT_HOUSEHOLD: Final = (0.55, 0.03)
# Arrivals from outside the register per person per year: fewer than departures, as GSO's net
# migration rates for both provinces are negative (a few per 1000).
ARRIVAL_RATE: Final = 0.006
ARRIVAL_AGES: Final = _curve(
    [(0, 0.4), (14, 0.4), (16, 1.0), (20, 4.0), (24, 4.5), (30, 2.5), (40, 0.8), (60, 0.3), (80, 0.1), (100, 0.0)]
)  # fmt: skip
JOIN_EXISTING_HOUSEHOLD: Final = 0.5
URBAN_ATTRACTION: Final = 2.0  # destination weight of a ward or town relative to a rural commune

# Snapshot households (2019 census: 3.5 persons per household, few people living alone).
# Unmarried people living on their own: few young adults (migrant workers), more among the old.
LIVE_ALONE: Final = _curve([(17, 0.0), (18, 0.04), (25, 0.08), (40, 0.12), (59, 0.15), (60, 0.25), (80, 0.3)])
MOTHER_AGE_AT_BIRTH: Final = (27.0, 5.5)
YOUNG_COUPLE_WITH_PARENTS: Final = 0.5  # couples with the wife under 30 living with his parents
OLD_COUPLE_WITH_CHILD: Final = 0.3  # couples with the wife 62+ living with a married child
TEMPORARY_RESIDENCE: Final = (0.02, 0.5)  # other households, young adults living on their own


@dataclass(frozen=True)
class DemoRegister:
    """A synthetic register: snapshot at `reference_date` and the events after it, canonical columns."""

    households: pl.DataFrame
    persons: pl.DataFrame
    events: pl.DataFrame
    reference_date: date
    geography: str


def generate_register(scale: float, seed: int) -> DemoRegister:
    """A synthetic register of `scale` times the 2019 census population of the two provinces."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    rng = np.random.default_rng(seed)
    communes = _load_communes()
    register = _Register(communes)
    households = _populate_snapshot(register, scale, rng)
    persons = register.snapshot_frame()
    for month_start in _months():
        _simulate_month(register, month_start, rng)
    return DemoRegister(
        households=households,
        persons=persons,
        events=register.log.frame(communes.codes),
        reference_date=REFERENCE_DATE,
        geography=GEOGRAPHY,
    )


# --- calibration data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Communes:
    codes: list[str]
    province: Ints  # index into PROVINCES
    district: Ints  # index of the 2025 district
    urban: Mask
    weight: F64  # 2019 census population carried over to the 2025 commune
    age_profile: F64  # [commune, age 0..100]: share of the population


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


def _short_name(name: str) -> str:
    folded = _fold(name)
    for prefix in ("thị trấn ", "phường ", "xã "):
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=1)
def _load_communes() -> _Communes:
    units = _read_csv(UNITS_FILE)
    district_province = {
        u["code"]: u["parent_code"]
        for u in units
        if u["level"] == "district" and u["parent_code"] in PROVINCES
    }
    rows = [u for u in units if u["level"] == "commune" and u["parent_code"] in district_province]
    codes = [u["code"] for u in rows]
    commune_district = {u["code"]: u["parent_code"] for u in rows}
    census = _read_csv(COMMUNE_CENSUS_FILE)
    population, old_district = _carry_census_over(census, rows, district_province)

    districts = sorted(district_province)
    profiles = _age_profiles(census)
    urban = np.array([u["unit_type"] in URBAN_UNIT_TYPES for u in rows])
    age_profile = np.empty((len(rows), MAX_AGE + 1))
    for i, code in enumerate(codes):
        province = district_province[commune_district[code]]
        setting = "urban" if urban[i] else "rural"
        key = (province, _fold(old_district.get(code, "")), setting)
        age_profile[i] = profiles.get(key, profiles[(province, "", setting)])
    return _Communes(
        codes=codes,
        province=np.array([PROVINCES.index(district_province[commune_district[c]]) for c in codes]),
        district=np.array([districts.index(commune_district[c]) for c in codes]),
        urban=urban,
        weight=np.array([population[c] for c in codes], dtype=np.float64),
        age_profile=age_profile,
    )


def _carry_census_over(
    census: list[dict[str, str]], units: list[dict[str, str]], district_province: dict[str, str]
) -> tuple[dict[str, float], dict[str, str]]:
    """2019 census population of each 2025 commune, and the 2019 district it lay in.

    1. A census commune with a 2025 code counts for that commune (two 2019 communes may share one).
    2. A census commune without one is matched by name (without its type word: xã Hương Gián became
       phường Hương Gián) to a 2025 commune that has no census row yet, in the 2025 districts its
       2019 district is linked to (by district code or by its coded communes) or in districts new since
       2019 (thị xã Chũ, Nghi Sơn); a 2019 district linked to none (Yên Dũng, Đông Sơn) searches its
       whole province. Only a unique match counts.
    3. What is left are communes merged before 2025 into a neighbour. Their population is spread over
       the 2025 communes of the linked districts that still have no census row (the merged communes
       under a new name), equally; if there are none, over all the linked districts' communes in
       proportion to their population. A commune left with nothing gets its district's median.
    """
    commune_district = {u["code"]: u["parent_code"] for u in units}
    by_short_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    for u in units:
        by_short_name[(district_province[u["parent_code"]], _fold(u["short_name"]))].append(u["code"])

    communes = [r for r in census if r["level"] == "commune" and r["province_code_2019"] in PROVINCES]
    district_codes = {
        (r["province_code_2019"], r["district"]): r["district_code_gso_2025_01"]
        for r in census
        if r["level"] == "district" and r["district_code_gso_2025_01"] in district_province
    }
    matched: dict[int, str] = {
        i: r["commune_code_gso_2025_01"]
        for i, r in enumerate(communes)
        if r["commune_code_gso_2025_01"] in commune_district
    }

    def linked_districts() -> dict[tuple[str, str], set[str]]:
        linked: dict[tuple[str, str], set[str]] = defaultdict(set)
        for key, code in district_codes.items():
            linked[key].add(code)
        for i, code in matched.items():
            linked[(communes[i]["province_code_2019"], communes[i]["district"])].add(commune_district[code])
        return linked

    linked = linked_districts()
    known = {d for districts in linked.values() for d in districts}
    new_districts = {d for d in district_province if d not in known}
    taken = set(matched.values())
    for i, r in enumerate(communes):
        if i in matched:
            continue
        province, old = r["province_code_2019"], (r["province_code_2019"], r["district"])
        allowed = linked[old] | {d for d in new_districts if district_province[d] == province}
        candidates = [
            c
            for c in by_short_name[(province, _short_name(r["commune"]))]
            if c not in taken and (not linked[old] or commune_district[c] in allowed)
        ]
        if len(candidates) == 1:
            matched[i] = candidates[0]
            taken.add(candidates[0])

    population: dict[str, float] = dict.fromkeys(commune_district, 0.0)
    old_district: dict[str, str] = {}  # the 2019 district of the commune's largest census row
    largest: dict[str, float] = defaultdict(float)
    for i, code in matched.items():
        total = float(communes[i]["total"])
        population[code] += total
        if total > largest[code]:
            largest[code] = total
            old_district[code] = communes[i]["district"]

    linked = linked_districts()
    remainder: dict[tuple[str, str], float] = defaultdict(float)
    for i, r in enumerate(communes):
        if i not in matched:
            remainder[(r["province_code_2019"], r["district"])] += float(r["total"])
    for old, left in remainder.items():
        targets = [c for c in commune_district if commune_district[c] in linked[old]]
        if not targets:  # a 2019 district with no trace in 2025: its province's communes
            targets = [c for c in commune_district if district_province[commune_district[c]] == old[0]]
        unmatched = [c for c in targets if c not in taken]
        if unmatched:
            for c in unmatched:
                population[c] += left / len(unmatched)
                old_district.setdefault(c, old[1])
        else:
            total = sum(population[c] for c in targets)
            for c in targets:
                population[c] += left * population[c] / total

    for district in district_province:
        members = [c for c in commune_district if commune_district[c] == district]
        filled = [population[c] for c in members if population[c] > 0]
        for c in members:
            if population[c] == 0:
                population[c] = float(np.median(filled)) if filled else 1.0
    return population, old_district


def _age_profiles(census: list[dict[str, str]]) -> dict[tuple[str, str, str], F64]:
    """Single-year age shares per (province, 2019 district or "" for the province, urban/rural)."""
    province_code = {_fold(r["province"]): r["province_code_2019"] for r in census}
    counts: dict[tuple[str, str, str], F64] = {}
    for r in _read_csv(AGE_CENSUS_FILE):
        province = province_code.get(_fold(r["province"]))
        if province is None or r["age_group"] == "total" or r["urban_rural"] == "total":
            continue
        key = (province, _fold(r["district"]), r["urban_rural"])
        group = AGE_GROUPS - 1 if r["age_group"] == "85+" else int(r["age_group"].split("-")[0]) // 5
        counts.setdefault(key, np.zeros(AGE_GROUPS))[group] += float(r["population"])
    # Small groups (a district's few urban wards) borrow the province's shape.
    return {
        key: _single_years(groups if groups.sum() >= 2000 else counts[(key[0], "", key[2])])
        for key, groups in counts.items()
    }


def _single_years(groups: F64) -> F64:
    """Shares by single year of age from five-year groups: linear within each group with the slope
    of its neighbours (keeping each group's total), and 85+ declining geometrically to 100."""
    density = groups / 5
    tail = 0.8 ** np.arange(MAX_AGE + 1 - 85)  # the first years of 85+ hold about a fifth of it each
    single = np.zeros(MAX_AGE + 1)
    for g in range(AGE_GROUPS - 1):
        before = density[max(g - 1, 0)]
        after = density[g + 1] if g + 1 < AGE_GROUPS - 1 else groups[-1] / tail.sum()
        slope = (after - before) / (10 if g > 0 else 5)
        values = np.maximum(density[g] + slope * (np.arange(5) - 2), 0.05 * density[g])
        single[5 * g : 5 * g + 5] = values * groups[g] / max(values.sum(), 1e-12)
    single[85:] = groups[-1] * tail / tail.sum()
    total: float = single.sum()
    return single / total


# --- the register in memory ---------------------------------------------------------------------


def _day(d: date) -> int:
    return (d - EPOCH).days


def _months() -> Iterator[date]:
    year, month = FIRST_MONTH.year, FIRST_MONTH.month
    while date(year, month, 1) <= LAST_MONTH:
        yield date(year, month, 1)
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)


def _age(day: int, birth: Ints) -> Ints:
    """Completed calendar years on `day` (day numbers since 1970-01-01, as the register's dates are):
    the same count as a birthday comparison, so a mother counted 15 is 15 on every day of the month."""
    on = np.datetime64(EPOCH) + np.timedelta64(int(day), "D")
    born = birth.astype("datetime64[D]")
    born_month = born.astype("datetime64[M]")
    on_month = on.astype("datetime64[M]")
    months = (on_month - born_month).astype(np.int64)
    # A month short while this month's day has not reached the day of birth.
    months -= (on - on_month).astype(np.int64) < (born - born_month).astype(np.int64)
    years: Ints = np.clip(months // 12, 0, MAX_AGE)
    return years


def _birthday(birth: Ints, years: int) -> Ints:
    """The day of the `years`-th birthday, as `_calendar_age` counts it."""
    born = birth.astype("datetime64[D]")
    month = born.astype("datetime64[M]")
    moved = (month + 12 * years).astype("datetime64[D]") + (born - month)
    result: Ints = moved.astype(np.int64)
    return result


def _nullable(index: pl.Expr) -> pl.Expr:
    return pl.when(index >= 0).then(index)


def _ids(prefix: str, index: pl.Expr, width: int = 8) -> pl.Expr:
    """Ids numbered from 1: P00000001, H00000001, E000000001 (digits of 10**width + number, after the
    leading 1: faster than padding)."""
    digits = (index + 10**width + 1).cast(pl.String).str.slice(1)
    return pl.when(index >= 0).then(pl.format(prefix + "{}", digits))


def _date(day: pl.Expr) -> pl.Expr:
    return pl.when(day != NO_DAY).then(day).cast(pl.Int32).cast(pl.Date)


def _lookup(values: list[str], column: str) -> pl.Expr:
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(_nullable(pl.col(column)))


def _canonical(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    dtypes: dict[str, type[pl.DataType]] = {
        "String": pl.String,
        "Int8": pl.Int8,
        "Int16": pl.Int16,
        "Date": pl.Date,
    }
    return frame.select(pl.col(c).cast(dtypes[column_type(c)]) for c in columns)


class _EventLog:
    """Events as integer columns (indices and day numbers), turned into a canonical frame at the end."""

    COLUMNS: Final = (
        "person",
        "household",
        "sex",
        "birth",
        "mother",
        "mother_birth",
        "birth_order",
        "spouse",
        "origin",
        "destination",
        "method",
    )
    DATE_COLUMNS: Final = frozenset({"birth", "mother_birth"})

    def __init__(self) -> None:
        self.batches: list[dict[str, Ints]] = []  # 32 bits hold any day number or index here

    def add(self, kind: EventType, day: Ints, area: Ints, **columns: Ints) -> None:
        """Events of one kind on `day` in commune `area`; columns not given stay empty."""
        count = len(day)
        if count == 0:
            return
        batch = {
            "type": np.full(count, EVENT_TYPES.index(kind), dtype=np.int32),
            "day": day.astype(np.int32),
            "area": area.astype(np.int32),
        }
        for name in self.COLUMNS:
            value = columns.get(name, NO_DAY if name in self.DATE_COLUMNS else NONE)
            batch[name] = np.broadcast_to(np.asarray(value, dtype=np.int32), (count,))
        self.batches.append(batch)

    def frame(self, commune_codes: list[str]) -> pl.DataFrame:
        names = ("type", "day", "area", *self.COLUMNS)
        columns = {
            name: np.concatenate([b[name] for b in self.batches] or [np.zeros(0, np.int32)]) for name in names
        }
        self.batches = []
        order = np.argsort(columns["day"], kind="stable")  # by date, in the order events happened
        raw = pl.DataFrame({name: columns.pop(name)[order] for name in names})
        frame = raw.select(
            _ids("E", pl.int_range(pl.len()), 9).alias("event_id"),
            _lookup([t.value for t in EVENT_TYPES], "type").alias("event_type"),
            _date(pl.col("day")).alias("event_date"),
            _ids("P", pl.col("person")).alias("person_id"),
            _lookup(commune_codes, "area").alias("area_code"),
            pl.lit(GEOGRAPHY).alias("geography"),
            _ids("H", pl.col("household")).alias("household_id"),
            _nullable(pl.col("sex")).alias("sex"),
            _date(pl.col("birth")).alias("birth_date"),
            _ids("P", pl.col("mother")).alias("mother_id"),
            _date(pl.col("mother_birth")).alias("mother_birth_date"),
            _nullable(pl.col("birth_order")).alias("birth_order"),
            _ids("P", pl.col("spouse")).alias("spouse_id"),
            _lookup(commune_codes, "origin").alias("origin_area_code"),
            _lookup(commune_codes, "destination").alias("destination_area_code"),
            _lookup([m.value for m in METHODS], "method").alias("contraceptive_method"),
        )
        return _canonical(frame, EVENT_COLUMNS)


class _Register:
    """Everyone ever in the register, as parallel arrays indexed by person (and by household)."""

    PERSON_FIELDS: Final = (
        ("sex", np.int8, 0),
        ("birth", np.int32, 0),
        ("commune", np.int32, NONE),
        ("household", np.int32, NONE),
        ("marital", np.int8, SINGLE),
        ("spouse", np.int32, NONE),
        ("method", np.int8, NO_METHOD),
        ("parity", np.int16, 0),
        ("last_birth", np.int32, -(10**6)),
        ("infant_death", np.int32, 10**9),  # day of a death before age 1 decided at birth
        ("present", np.bool_, False),
        ("born_here", np.bool_, False),
        ("busy", np.bool_, False),  # already has an event this month
        ("temporary", np.bool_, False),  # temporary residence
    )

    sex: NDArray[np.int8]
    birth: NDArray[np.int32]
    commune: NDArray[np.int32]
    household: NDArray[np.int32]
    marital: NDArray[np.int8]
    spouse: NDArray[np.int32]
    method: NDArray[np.int8]
    parity: NDArray[np.int16]
    last_birth: NDArray[np.int32]
    infant_death: NDArray[np.int32]
    present: Mask
    born_here: Mask
    busy: Mask
    temporary: Mask

    def __init__(self, communes: _Communes) -> None:
        self.communes = communes
        self.log = _EventLog()
        self.size = 0
        for name, dtype, fill in self.PERSON_FIELDS:
            setattr(self, name, np.full(0, fill, dtype=dtype))
        self.household_count = 0
        self.household_commune = np.zeros(0, np.int32)
        self.household_size = np.zeros(0, np.int32)  # members present
        self.household_active = np.zeros(0, np.bool_)
        self.household_left = np.zeros(0, np.int32)  # day the last member left, this month
        # Snapshot households by commune, where newcomers may join one.
        self.snapshot_households = np.zeros(0, np.int64)
        self.snapshot_household_commune = np.zeros(0, np.int64)

    def add_persons(self, count: int) -> Ints:
        needed = self.size + count
        if needed > len(self.sex):
            grown = max(needed, int(len(self.sex) * 1.25) + 1024)
            for name, dtype, fill in self.PERSON_FIELDS:
                new = np.full(grown, fill, dtype=dtype)
                new[: self.size] = getattr(self, name)[: self.size]
                setattr(self, name, new)
        index = np.arange(self.size, needed)
        self.size = needed
        return index

    def add_households(self, communes: Ints) -> Ints:
        needed = self.household_count + len(communes)
        if needed > len(self.household_commune):
            grown = max(needed, int(len(self.household_commune) * 1.25) + 1024)
            self.household_commune = np.resize(self.household_commune, grown)
            self.household_size = np.resize(self.household_size, grown)
            self.household_active = np.resize(self.household_active, grown)
            self.household_left = np.resize(self.household_left, grown)
        index = np.arange(self.household_count, needed)
        self.household_commune[index] = communes
        self.household_size[index] = 0
        self.household_active[index] = True
        self.household_left[index] = NO_DAY
        self.household_count = needed
        return index

    def join(self, persons: Ints, households: Ints) -> None:
        self.household[persons] = households
        np.add.at(self.household_size, households, 1)

    def leave(self, persons: Ints, day: Ints) -> None:
        """Persons leave their household; an empty one dissolves at the month's end."""
        households = self.household[persons]
        np.subtract.at(self.household_size, households, 1)
        np.maximum.at(self.household_left, households, day)

    def remove(self, persons: Ints, day: Ints) -> None:
        """Persons leave the register: death, or a move out of its area."""
        self.leave(persons, day)
        self.present[persons] = False
        self.busy[persons] = True

    def snapshot_frame(self) -> pl.DataFrame:
        n = self.size
        raw = pl.DataFrame(
            {
                "person": np.arange(n),
                "household": self.household[:n],
                "sex": self.sex[:n],
                "birth": self.birth[:n],
                "area": self.commune[:n],
                "temporary": self.temporary[:n],
                "marital": self.marital[:n],
                "method": self.method[:n],
            }
        )
        frame = raw.select(
            _ids("P", pl.col("person")).alias("person_id"),
            _ids("H", pl.col("household")).alias("household_id"),
            pl.col("sex"),
            _date(pl.col("birth")).alias("birth_date"),
            _lookup(self.communes.codes, "area").alias("area_code"),
            pl.lit(GEOGRAPHY).alias("geography"),
            pl.when(pl.col("temporary"))
            .then(pl.lit("temporary"))
            .otherwise(pl.lit("permanent"))
            .alias("residence"),
            _lookup(list(MARITAL_STATUS_NAMES), "marital").alias("marital_status"),
            _lookup([m.value for m in METHODS], "method").alias("contraceptive_method"),
        )
        return _canonical(frame, PERSON_COLUMNS)


# --- helpers ------------------------------------------------------------------------------------


def _apportion(total: int, weights: F64) -> Ints:
    """Integers summing to `total` in proportion to `weights` (largest remainder)."""
    quota = weights / weights.sum() * total
    counts: Ints = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def _pick(sorted_keys: Ints, low: Ints, high: Ints, rng: np.random.Generator) -> Ints:
    """Position of a random element of `sorted_keys` in [low, high] for each query; -1 when none."""
    start = np.searchsorted(sorted_keys, low, side="left")
    stop = np.searchsorted(sorted_keys, high, side="right")
    count = stop - start
    position = start + (rng.random(len(start)) * count).astype(np.int64)
    result: Ints = np.where(count > 0, position, -1)
    return result


def _rank_within(groups: Ints) -> Ints:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    if len(groups) == 0:
        return groups
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    ranks: Ints = np.arange(len(groups)) - first
    return ranks


def _choose(rng: np.random.Generator, shares: F64, count: int) -> Ints:
    """Indices drawn with probabilities proportional to `shares`."""
    cumulative = np.cumsum(shares / shares.sum())
    chosen: Ints = np.minimum(np.searchsorted(cumulative, rng.random(count), side="right"), len(shares) - 1)
    return chosen


def _mix(shares: dict[ContraceptiveMethod, float]) -> F64:
    return np.array([shares.get(m, 0.0) for m in METHODS])


def _draw_methods(rng: np.random.Generator, ages: Ints, current: Ints | None = None) -> Ints:
    """Methods for new users, or for users switching from `current`: the national mix, without
    sterilization before 30 and without the method in use."""
    mix = np.tile(_mix(METHOD_MIX), (len(ages), 1))
    mix[ages < 30] *= ~STERILIZATION
    if current is not None:
        mix[np.arange(len(ages)), current] = 0
    cumulative = mix.cumsum(axis=1)
    u = rng.random(len(ages)) * cumulative[:, -1]
    chosen: Ints = (u[:, None] >= cumulative).sum(axis=1)
    return chosen


def _monthly(annual_rate: F64 | float) -> F64:
    """Chance of an event within a month at a constant annual rate."""
    chance: F64 = -np.expm1(-np.asarray(annual_rate, dtype=np.float64) / 12)
    return chance


# --- the snapshot -------------------------------------------------------------------------------


def _populate_snapshot(register: _Register, scale: float, rng: np.random.Generator) -> pl.DataFrame:
    communes = register.communes
    counts = np.zeros(len(communes.codes), dtype=np.int64)
    for p in range(len(PROVINCES)):
        members = communes.province == p
        counts[members] = _apportion(round(scale * communes.weight[members].sum()), communes.weight[members])
    # Ages from each commune's single-year profile; on 31 December, age a means born in 2020 - a.
    by_age = rng.multinomial(counts, communes.age_profile / communes.age_profile.sum(axis=1, keepdims=True))
    commune = np.repeat(np.repeat(np.arange(len(counts)), MAX_AGE + 1), by_age.ravel())
    age = np.repeat(np.tile(AGES, len(counts)), by_age.ravel())
    n = len(commune)
    years = [REFERENCE_DATE.year - a for a in range(MAX_AGE + 1)]
    born_from = np.array([_day(date(y, 1, 1)) for y in years])
    year_days = np.array([_day(date(y + 1, 1, 1)) for y in years]) - born_from
    birth = born_from[age] + np.floor(rng.random(n) * year_days[age]).astype(np.int64)
    sex = np.where(rng.random(n) < SEX_RATIO[age] / (100 + SEX_RATIO[age]), MALE, FEMALE)

    marital, spouse = _snapshot_marriages(commune, age, sex, rng)
    household, mother = _snapshot_households(commune, age, sex, marital, spouse, rng)

    # Order persons by household, eldest first, so that ids read naturally.
    order = np.argsort(household * (1 << 20) + (birth - birth.min()))
    new_position = np.empty(n, dtype=np.int64)
    new_position[order] = np.arange(n)

    def renumber(index: Ints) -> Ints:
        renumbered: Ints = np.where(index >= 0, new_position[np.maximum(index, 0)], NONE)
        return renumbered

    commune, age, sex, birth, household = (a[order] for a in (commune, age, sex, birth, household))
    marital = marital[order]
    spouse, mother = renumber(spouse[order]), renumber(mother[order])

    index = register.add_persons(n)
    register.sex[index] = sex
    register.birth[index] = birth
    register.commune[index] = commune
    register.marital[index] = marital
    register.spouse[index] = spouse
    register.present[index] = True
    # A woman's births so far: the children living with her (a floor: some have left home). Her
    # children follow her in her household, youngest last, so the last assignment is her last birth.
    children = np.flatnonzero(mother >= 0)
    register.parity[index] = np.bincount(mother[children], minlength=n)
    register.last_birth[mother[children]] = birth[children]

    head = np.r_[0, np.flatnonzero(np.diff(household)) + 1] if n else household
    household_communes = commune[head]
    register.add_households(household_communes)
    register.household[index] = household
    register.household_size[: len(head)] = np.diff(np.r_[head, n])
    register.snapshot_households = np.arange(len(head))
    register.snapshot_household_commune = household_communes

    # Temporary residents: mostly young adults living on their own (migrant workers).
    alone_young = (register.household_size[: len(head)] == 1) & (age[head] >= 18) & (age[head] < 40)
    temporary = rng.random(len(head)) < np.where(alone_young, TEMPORARY_RESIDENCE[1], TEMPORARY_RESIDENCE[0])
    register.temporary[index] = temporary[household]

    wives = np.flatnonzero((marital == MARRIED) & (sex == FEMALE) & (age >= 15) & (age <= 49))
    users = wives[rng.random(len(wives)) < CPR_BY_AGE[age[wives]]]
    register.method[users] = _draw_methods(rng, age[users])

    frame = pl.DataFrame({"household": register.snapshot_households, "area": household_communes}).select(
        _ids("H", pl.col("household")).alias("household_id"),
        _lookup(communes.codes, "area").alias("area_code"),
        pl.lit(GEOGRAPHY).alias("geography"),
    )
    return _canonical(frame, HOUSEHOLD_COLUMNS)


def _snapshot_marriages(
    commune: Ints, age: Ints, sex: Ints, rng: np.random.Generator
) -> tuple[NDArray[np.int8], Ints]:
    """Marital status by age and sex; married couples live in the same commune.

    Men and women are married with their married share by age, and paired by age rank within the
    commune. Those left over in a commune (the shares make about 2% more wives than husbands) have
    a spouse living elsewhere: working away or abroad, common in both provinces.
    """
    n = len(commune)
    communes = commune.max(initial=0) + 1
    married_share = np.where(sex == MALE, MARRIED_SHARE[MALE][age], MARRIED_SHARE[FEMALE][age])
    wants = rng.random(n) < married_share
    sides = []
    for s in (FEMALE, MALE):
        members = rng.permutation(np.flatnonzero(wants & (sex == s)))
        sides.append(members[np.argsort(commune[members].astype(np.int16), kind="stable")])
    women, men = sides
    pairs = np.minimum(
        np.bincount(commune[women], minlength=communes), np.bincount(commune[men], minlength=communes)
    )
    couples = []
    for members in sides:
        kept = members[_rank_within(commune[members]) < pairs[commune[members]]]
        # Pairing by age rank within the commune gives husbands a few years older than wives.
        rank_key = commune[kept] * 1000.0 + age[kept] + rng.normal(0, 3, len(kept))
        couples.append(kept[np.argsort(rank_key, kind="stable")])
    wives, husbands = couples
    marital = np.full(n, SINGLE, dtype=np.int8)
    spouse = np.full(n, NONE, dtype=np.int64)
    marital[women] = marital[men] = MARRIED
    spouse[wives], spouse[husbands] = husbands, wives

    unmarried = np.flatnonzero(marital != MARRIED)
    u = rng.random(len(unmarried))
    a, male = age[unmarried], sex[unmarried] == MALE
    widowed = np.where(male, WIDOWED_SHARE[MALE][a], WIDOWED_SHARE[FEMALE][a])
    divorced = np.where(male, DIVORCED_SHARE[MALE][a], DIVORCED_SHARE[FEMALE][a])
    marital[unmarried[u < widowed]] = WIDOWED
    marital[unmarried[(u >= widowed) & (u < widowed + divorced)]] = DIVORCED
    return marital, spouse


def _snapshot_households(
    commune: Ints, age: Ints, sex: Ints, marital: NDArray[np.int8], spouse: Ints, rng: np.random.Generator
) -> tuple[Ints, Ints]:
    """Household of each person (numbered by commune) and the mother each child lives with.

    Couples head households, some young ones living with the husband's parents instead. Children
    and never-married adults live with a mother of plausible age in the commune (or with relatives
    when there is none), apart from the few who live alone (migrant workers); so do the widowed and
    divorced under 30, while older ones head their own household. Some older couples and most older
    unmarried people live with the family of a married child.
    """
    n = len(commune)
    key = commune * 128 + age  # people of a commune by age
    anchor = np.arange(n)  # whose household a person joins
    married = marital == MARRIED
    husbands = np.flatnonzero(married & (sex == MALE) & (spouse >= 0))
    anchor[husbands] = spouse[husbands]
    alone = ~married & (rng.random(n) < LIVE_ALONE[age])

    def by_age(people: Ints) -> tuple[Ints, Ints]:
        order = np.argsort(key[people], kind="stable")
        return people[order], key[people[order]]

    def join(people: Ints, base: Ints, low: int, high: int, hosts: tuple[Ints, Ints]) -> Mask:
        """Link people to a random host whose key lies in [base + low, base + high]."""
        found = _pick(hosts[1], base + low, base + high, rng)
        anchor[people[found >= 0]] = hosts[0][found[found >= 0]]
        joined: Mask = found >= 0
        return joined

    mothers = by_age(np.flatnonzero((sex == FEMALE) & (marital != SINGLE) & (age >= 17)))
    # Families that older relatives join: married women of 30 and over (never themselves joining).
    families = by_age(np.flatnonzero(married & (sex == FEMALE) & (age >= 30)))
    wives = np.flatnonzero(married & (sex == FEMALE))
    young = wives[
        (age[wives] < 30) & (spouse[wives] >= 0) & (rng.random(len(wives)) < YOUNG_COUPLE_WITH_PARENTS)
    ]
    join(young, key[spouse[young]], 20, 40, mothers)  # the husband's mother
    old = wives[(age[wives] >= 62) & (rng.random(len(wives)) < OLD_COUPLE_WITH_CHILD)]
    join(old, key[old], -35, -22, families)
    old_alone = np.flatnonzero(~married & ~alone & (age >= 60))
    join(old_alone, key[old_alone], -40, -20, families)

    children = np.flatnonzero(~alone & (age < 60) & ((marital == SINGLE) | (~married & (age < 30))))
    gap = np.clip(np.round(rng.normal(*MOTHER_AGE_AT_BIRTH, len(children))), 17, 45).astype(np.int64)
    found = join(children, key[children] + gap, -2, 2, mothers)
    retry = children[~found]
    found[~found] = join(retry, key[retry], 16, 46, mothers)
    mother = np.full(n, NONE, dtype=np.int64)
    mother[children[found]] = anchor[children[found]]
    # Without a mother in the commune, they live with relatives: the household of another adult.
    motherless = children[~found]
    anchor = _resolve(anchor)
    head = (anchor == np.arange(n)) & (age >= 18)
    head[motherless] = False
    heads = np.flatnonzero(head)
    heads = heads[np.argsort(commune[heads], kind="stable")]
    join(motherless, commune[motherless], 0, 0, (heads, commune[heads]))
    anchor = _resolve(anchor)

    # Number households by commune so that ids run through the communes in order.
    founders = np.flatnonzero(anchor == np.arange(n))
    founders = founders[np.argsort(commune[founders], kind="stable")]
    number = np.empty(n, dtype=np.int64)
    number[founders] = np.arange(len(founders))
    household: Ints = number[anchor]
    return household, mother


def _resolve(anchor: Ints) -> Ints:
    """Follow 'lives with' links to the person whose household it is. Links go from a husband to
    his wife, from children and young wives to an older ever-married woman, from older people to a
    married woman of 30-61 who never links on, and from those without a mother in the commune to
    someone heading a household, so they end (each pass halves the remaining chains)."""
    for _ in range(64):
        following = anchor[anchor]
        if np.array_equal(following, anchor):
            return anchor
        anchor = following
    raise RuntimeError("household links form a cycle")


# --- the monthly simulation ---------------------------------------------------------------------

# Chances within a month by single year of age, from the annual rates above.
DEATH_CHANCE: Final = np.stack(
    [np.zeros(MAX_AGE + 1), _monthly(DEATH_RATE[MALE]), _monthly(DEATH_RATE[FEMALE])]
)
MARRIAGE_CHANCE: Final = np.stack([_monthly(MARRIAGE_RATE), _monthly(MARRIAGE_RATE * REMARRIAGE_FACTOR)])
DIVORCE_CHANCE: Final = _monthly(DIVORCE_RATE)
MOVE_CHANCE: Final = np.stack([_monthly(MOVE_RATE), _monthly(MOVE_RATE * MARRIED_MOVE_FACTOR)])
HOUSEHOLD_MOVE_CHANCE: Final = float(_monthly(HOUSEHOLD_MOVE_RATE))

# Relative chance of a birth by [unmarried/married, parity 0/1/2/3+, method class], the class of
# method m being METHOD_CLASS[m + 1]: none, traditional, modern, sterilization.
METHOD_CLASS: Final = np.array(
    [0]
    + [
        1 if m is ContraceptiveMethod.TRADITIONAL else 3 if STERILIZATION[i] else 2
        for i, m in enumerate(METHODS)
    ],
    dtype=np.int8,
)
BIRTH_WEIGHT: Final = (
    np.array([BIRTH_WEIGHT_UNMARRIED, 1.0])[:, None, None]
    * BIRTH_WEIGHT_PARITY[None, :, None]
    * np.array([1.0, BIRTH_WEIGHT_TRADITIONAL, BIRTH_WEIGHT_MODERN, 0.0])[None, None, :]
)
# Switching away from a method in proportion to 1 - its share keeps the mix as it is (the flows
# between two methods balance); it also makes IUD users the least likely to switch, as observed.
SWITCH_BY_METHOD: Final = SWITCH_RATE * (1 - _mix(METHOD_MIX)) / (1 - (_mix(METHOD_MIX) ** 2).sum())


@dataclass(frozen=True)
class _Month:
    start: int  # day number of the first day
    days: int
    age: NDArray[np.int8]  # completed years on the first day of everyone in the register then

    @property
    def size(self) -> int:
        return len(self.age)

    def event_days(self, rng: np.random.Generator, count: int) -> Ints:
        return self.start + rng.integers(0, self.days, count)


def _simulate_month(register: _Register, month_start: date, rng: np.random.Generator) -> None:
    """One month of events. Each person takes part in at most one group of events a month (a death
    and the widowhood it causes, a birth, a marriage with the bride's move, ...), so no event can
    follow a death or a departure, or come before a move into another commune."""
    start = _day(month_start)
    following = date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)
    days = _day(following) - start
    size = register.size
    month = _Month(start, days, _age(start, register.birth[:size]).astype(np.int8))
    register.busy[:size] = False
    register.household_left[: register.household_count] = NO_DAY
    _deaths(register, month, rng)
    _births(register, month, rng)
    _marriages(register, month, rng)
    _divorces(register, month, rng)
    _moves(register, month, rng)
    _household_moves(register, month, rng)
    _arrivals(register, month, rng)
    _contraception(register, month, rng)
    _dissolve_empty_households(register)


def _thin(rng: np.random.Generator, population: Ints, ceiling: float, chance: Callable[[Ints], F64]) -> Ints:
    """The members of `population` who have an event, each with its own `chance` (at most
    `ceiling`): candidates drawn at the ceiling chance, each kept with chance / ceiling. Exact, and
    much cheaper than a draw for everyone when the ceiling is small."""
    size = len(population)
    draws = int(size * ceiling + 6 * np.sqrt(size * ceiling) + 10)
    positions = np.cumsum(rng.geometric(ceiling, draws)) - 1  # each member a candidate with chance `ceiling`
    while positions[-1] < size:  # (practically never) more gaps needed
        positions = np.r_[positions, positions[-1] + np.cumsum(rng.geometric(ceiling, draws))]
    candidates = population[positions[positions < size]]
    kept: Ints = candidates[rng.random(len(candidates)) * ceiling < chance(candidates)]
    return kept


def _available(register: _Register, month: _Month) -> Mask:
    """Persons in the register at the month's start with no event yet this month."""
    available: Mask = register.present[: month.size] & ~register.busy[: month.size]
    return available


def _stop_method(register: _Register, women: Ints, day: Ints) -> None:
    users = register.method[women] != NO_METHOD
    stopping = women[users]
    register.log.add(EventType.CONTRACEPTION_CHANGE, day[users], register.commune[stopping], person=stopping)
    register.method[stopping] = NO_METHOD


def _die(register: _Register, dying: Ints, day: Ints) -> None:
    register.log.add(EventType.DEATH, day, register.commune[dying], person=dying)
    register.remove(dying, day)


def _deaths(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    n = month.size
    present = register.present[:n]

    def chance(people: Ints) -> F64:
        # Infants born here die on the day decided at birth, if any, until their first birthday.
        age = month.age[people]
        result: F64 = np.where(
            register.born_here[people] & (age < 1), 0.0, DEATH_CHANCE[register.sex[people], age]
        )
        return result

    dying = _thin(rng, np.flatnonzero(present), float(DEATH_CHANCE.max()), chance)
    infant_death = register.infant_death[:n]
    scheduled = np.flatnonzero(
        present & (infant_death >= month.start) & (infant_death < month.start + month.days)
    )
    day = np.r_[month.event_days(rng, len(dying)), infant_death[scheduled]]
    dying = np.r_[dying, scheduled]
    _die(register, dying, day)

    spouses = register.spouse[dying]
    widowed = (spouses >= 0) & register.present[np.maximum(spouses, 0)]
    widows, widow_day = spouses[widowed], day[widowed]
    register.marital[widows] = WIDOWED
    register.spouse[widows] = NONE
    register.busy[widows] = True
    _stop_method(register, widows, widow_day)


def _births(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    n = month.size
    fertile = register.present[:n] & (register.sex[:n] == FEMALE) & (month.age >= 15) & (month.age <= 49)
    women = np.flatnonzero(fertile)
    age = month.age[women]
    married = (register.marital[women] == MARRIED).astype(np.int8)
    parity = np.minimum(register.parity[women], BIRTH_WEIGHT.shape[1] - 1).astype(np.int8)
    cell = (married * BIRTH_WEIGHT.shape[1] + parity) * BIRTH_WEIGHT.shape[2] + METHOD_CLASS[
        register.method[women] + 1
    ]
    weight = BIRTH_WEIGHT.ravel()[cell]
    weight[(month.start - register.last_birth[women] < BIRTH_INTERVAL_DAYS) | register.busy[women]] = 0
    # Scale the weights so that each single year of age has its expected births, ASFR x women / 12.
    women_by_age = np.bincount(age, minlength=MAX_AGE + 1)
    weight_by_age = np.bincount(age, weights=weight, minlength=MAX_AGE + 1)
    expected = ASFR * women_by_age / 12
    factor = np.divide(expected, weight_by_age, out=np.zeros(MAX_AGE + 1), where=weight_by_age > 0)
    mothers = women[rng.random(len(women)) < np.minimum(weight * factor[age], 0.5)]
    day = month.event_days(rng, len(mothers))

    babies = register.add_persons(len(mothers))
    register.sex[babies] = np.where(rng.random(len(babies)) < SRB / (100 + SRB), MALE, FEMALE)
    register.birth[babies] = day
    register.commune[babies] = register.commune[mothers]
    register.join(babies, register.household[mothers])
    register.present[babies] = register.born_here[babies] = register.busy[babies] = True
    register.busy[mothers] = True
    register.parity[mothers] += 1
    register.last_birth[mothers] = day
    register.log.add(
        EventType.BIRTH,
        day,
        register.commune[babies],
        person=babies,
        household=register.household[babies],
        sex=register.sex[babies],
        birth=day,
        mother=mothers,
        mother_birth=register.birth[mothers],
        birth_order=register.parity[mothers],
    )
    _stop_method(register, mothers, day)

    # Infant deaths are decided at birth, most in the first four weeks.
    dies = rng.random(len(babies)) < INFANT_MORTALITY
    neonatal = rng.random(len(babies)) < NEONATAL_SHARE
    age_at_death = np.where(neonatal, rng.integers(0, 28, len(babies)), rng.integers(28, 365, len(babies)))
    register.infant_death[babies[dies]] = day[dies] + age_at_death[dies]
    now = dies & (day + age_at_death < month.start + month.days)
    _die(register, babies[now], day[now] + age_at_death[now])


def _marriages(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    n = month.size
    communes = register.communes
    unmarried = _available(register, month) & (register.marital[:n] != MARRIED)
    women = np.flatnonzero(unmarried & (register.sex[:n] == FEMALE))
    brides = _thin(
        rng,
        women,
        float(MARRIAGE_CHANCE.max()),
        lambda people: MARRIAGE_CHANCE[
            (register.marital[people] != SINGLE).astype(np.int64), month.age[people]
        ],
    )
    men = np.flatnonzero(unmarried & (register.sex[:n] == MALE) & (month.age >= 18))
    gap = np.round(rng.normal(*HUSBAND_AGE_GAP, len(brides))).astype(np.int64)
    target = np.clip(month.age[brides] + gap, 18, MAX_AGE)

    # A groom of about the wanted age from the bride's district, else from her province. The keys
    # are 16-bit so that the stable sort is a radix sort.
    grooms = np.full(len(brides), NONE, dtype=np.int64)
    for area, width in ((communes.district, 1), (communes.province, 2)):
        keys = (area[register.commune[men]] * 128 + month.age[men]).astype(np.int16)
        order = np.argsort(keys, kind="stable")
        open_ = np.flatnonzero(grooms == NONE)
        base = area[register.commune[brides[open_]]] * 128 + target[open_]
        found = _pick(keys[order].astype(np.int64), base - width, base + width, rng)
        grooms[open_[found >= 0]] = men[order[found[found >= 0]]]
    # A man chosen by two brides marries the first; the other may marry in a later month.
    matched = np.flatnonzero(grooms != NONE)
    _, first = np.unique(grooms[matched], return_index=True)
    couples = matched[np.sort(first)]
    brides, grooms = brides[couples], grooms[couples]
    day = month.event_days(rng, len(brides))

    register.log.add(EventType.MARRIAGE, day, register.commune[grooms], person=grooms, spouse=brides)
    register.marital[brides] = register.marital[grooms] = MARRIED
    register.spouse[brides], register.spouse[grooms] = grooms, brides
    register.busy[brides] = register.busy[grooms] = True

    # The bride joins the groom's family, or the couple sets up their own household.
    own = rng.random(len(grooms)) < NEW_HOUSEHOLD_AT_MARRIAGE
    new = register.add_households(register.commune[grooms[own]])
    register.log.add(EventType.HOUSEHOLD_FORMED, day[own], register.commune[grooms[own]], household=new)
    register.leave(grooms[own], day[own])
    register.join(grooms[own], new)
    _relocate(register, brides, register.commune[grooms], register.household[grooms], day)

    starting = (month.age[brides] <= 49) & (rng.random(len(brides)) < START_AT_MARRIAGE)
    register.method[brides[starting]] = _choose(rng, _mix(NEWLYWED_MIX), int(starting.sum()))
    register.log.add(
        EventType.CONTRACEPTION_CHANGE,
        day[starting],
        register.commune[brides[starting]],
        person=brides[starting],
        method=register.method[brides[starting]],
    )


def _relocate(register: _Register, persons: Ints, commune: Ints, household: Ints, day: Ints) -> None:
    """Persons move to other households; a change of commune is a move_out and a move_in."""
    moving = register.commune[persons] != commune
    movers, origin, destination = persons[moving], register.commune[persons[moving]], commune[moving]
    register.log.add(EventType.MOVE_OUT, day[moving], origin, person=movers, destination=destination)
    register.log.add(
        EventType.MOVE_IN, day[moving], destination, person=movers, household=household[moving], origin=origin
    )
    register.leave(persons, day)
    register.commune[persons] = commune
    register.join(persons, household)


def _divorces(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    n = month.size
    available = _available(register, month)
    husbands = np.flatnonzero(available & (register.marital[:n] == MARRIED) & (register.sex[:n] == MALE))
    wives = register.spouse[husbands]
    both = (wives >= 0) & available[np.maximum(wives, 0)]
    husbands = _thin(
        rng, husbands[both], float(DIVORCE_CHANCE.max()), lambda people: DIVORCE_CHANCE[month.age[people]]
    )
    wives = register.spouse[husbands]
    day = month.event_days(rng, len(husbands))
    register.log.add(EventType.DIVORCE, day, register.commune[husbands], person=husbands, spouse=wives)
    register.marital[husbands] = register.marital[wives] = DIVORCED
    register.spouse[husbands] = register.spouse[wives] = NONE
    register.busy[husbands] = register.busy[wives] = True
    _stop_method(register, wives, day)
    # The husband leaves a shared household and sets up his own in the same commune.
    shared = register.household[husbands] == register.household[wives]
    leaving = husbands[shared]
    new = register.add_households(register.commune[leaving])
    register.log.add(EventType.HOUSEHOLD_FORMED, day[shared], register.commune[leaving], household=new)
    register.leave(leaving, day[shared])
    register.join(leaving, new)


def _destinations(
    register: _Register, origin: Ints, split: tuple[float, float], rng: np.random.Generator
) -> Ints:
    """Destination commune of each mover: another commune of the same province, a commune of the
    other register province, or outside the register (NONE). Wards and towns attract more."""
    communes = register.communes
    attraction = communes.weight * np.where(communes.urban, URBAN_ATTRACTION, 1.0)
    u = rng.random(len(origin))
    province = communes.province[origin]
    target_province = np.where(u < split[0], province, 1 - province)
    destination = np.full(len(origin), NONE, dtype=np.int64)
    inside = u < split[0] + split[1]
    for p in range(len(PROVINCES)):
        members = np.flatnonzero(communes.province == p)
        going = np.flatnonzero(inside & (target_province == p))
        destination[going] = members[_choose(rng, attraction[members], len(going))]
    # Drawing one's own commune means the neighbouring one on the list (same province).
    same = np.flatnonzero(destination == origin)
    after = (origin[same] + 1) % len(communes.codes)
    destination[same] = np.where(communes.province[after] == province[same], after, origin[same] - 1)
    return destination


def _join_or_found(
    register: _Register, destination: Ints, day: Ints, join_share: F64, rng: np.random.Generator
) -> Ints:
    """A household in the destination commune for each newcomer: with probability `join_share` an
    existing one (if the commune has one), otherwise a new one (household_formed)."""
    household = np.full(len(destination), NONE, dtype=np.int64)
    joins = np.flatnonzero(rng.random(len(destination)) < join_share)
    found = _pick(register.snapshot_household_commune, destination[joins], destination[joins], rng)
    joins, found = joins[found >= 0], found[found >= 0]
    existing = register.snapshot_households[found]
    usable = register.household_active[existing]
    household[joins[usable]] = existing[usable]
    founding = household == NONE
    new = register.add_households(destination[founding])
    register.log.add(EventType.HOUSEHOLD_FORMED, day[founding], destination[founding], household=new)
    household[founding] = new
    return household


def _moves(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    """People moving on their own, mostly young adults for work or study."""
    movers = _thin(
        rng,
        np.flatnonzero(_available(register, month)),
        float(MOVE_CHANCE.max()),
        lambda people: MOVE_CHANCE[(register.marital[people] == MARRIED).astype(np.int64), month.age[people]],
    )
    day = month.event_days(rng, len(movers))
    destination = _destinations(register, register.commune[movers], MOVE_SPLIT_PERSON, rng)
    register.busy[movers] = True
    leaving = destination == NONE
    register.log.add(
        EventType.MOVE_OUT, day[leaving], register.commune[movers[leaving]], person=movers[leaving]
    )
    register.remove(movers[leaving], day[leaving])
    staying = ~leaving
    join = np.full(int(staying.sum()), JOIN_EXISTING_HOUSEHOLD)
    household = _join_or_found(register, destination[staying], day[staying], join, rng)
    _relocate(register, movers[staying], destination[staying], household, day[staying])


def _household_moves(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    """Whole households moving: a new household at the destination, the old one dissolves."""
    count, size = register.household_count, register.size
    households = _thin(
        rng,
        np.arange(count),
        HOUSEHOLD_MOVE_CHANCE,
        lambda h: np.where(register.household_active[h], HOUSEHOLD_MOVE_CHANCE, 0.0),
    )
    moving = np.zeros(count, dtype=np.bool_)
    moving[households] = True
    members = np.flatnonzero(moving[register.household[:size]] & register.present[:size])
    moving[register.household[members[register.busy[members]]]] = False  # someone has an event already
    members = members[moving[register.household[members]]]
    households = households[moving[households]]

    day = month.event_days(rng, len(households))
    destination = _destinations(register, register.household_commune[households], MOVE_SPLIT_HOUSEHOLD, rng)
    new = np.full(len(households), NONE, dtype=np.int64)
    inside = destination != NONE
    new[inside] = register.add_households(destination[inside])
    register.log.add(EventType.HOUSEHOLD_FORMED, day[inside], destination[inside], household=new[inside])

    of = np.searchsorted(households, register.household[members])  # each member's household
    register.busy[members] = True
    leaving = destination[of] == NONE
    register.log.add(
        EventType.MOVE_OUT, day[of[leaving]], register.commune[members[leaving]], person=members[leaving]
    )
    register.remove(members[leaving], day[of[leaving]])
    staying = of[~leaving]
    _relocate(register, members[~leaving], destination[staying], new[staying], day[staying])


def _arrivals(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    """Newcomers from outside the register: single, mostly young adults."""
    communes = register.communes
    population = int(register.present[: register.size].sum())
    count = int(rng.poisson(population * ARRIVAL_RATE / 12))
    attraction = communes.weight * np.where(communes.urban, URBAN_ATTRACTION, 1.0)
    destination = _choose(rng, attraction, count)
    day = month.event_days(rng, count)
    age = _choose(rng, ARRIVAL_AGES, count)
    people = register.add_persons(count)
    register.sex[people] = np.where(rng.random(count) < 0.5, MALE, FEMALE)
    register.birth[people] = day - np.floor((age + rng.random(count)) * YEAR_DAYS).astype(np.int64)
    register.present[people] = register.busy[people] = True
    # Children arriving on their own come to relatives: they join a household.
    household = _join_or_found(
        register, destination, day, np.where(age < 15, 1.0, JOIN_EXISTING_HOUSEHOLD), rng
    )
    register.commune[people] = destination
    register.join(people, household)
    register.log.add(
        EventType.MOVE_IN,
        day,
        destination,
        person=people,
        household=household,
        sex=register.sex[people],
        birth=register.birth[people],
    )


def _contraception(register: _Register, month: _Month, rng: np.random.Generator) -> None:
    """Married women starting, switching and stopping methods; users leave the count at 50."""
    n = month.size
    # Married women 15-49, and older ones still counted as users (their 50th birthday fell in a
    # month with another event).
    counted = (month.age >= 15) & ((month.age <= 49) | (register.method[:n] != NO_METHOD))
    married = (register.sex[:n] == FEMALE) & (register.marital[:n] == MARRIED) & counted
    wives = np.flatnonzero(_available(register, month) & married)
    age = month.age[wives]
    fifty = np.full(len(wives), np.iinfo(np.int64).max)
    near = age >= 49
    fifty[near] = _birthday(register.birth[wives[near]], 50)
    turned = fifty < month.start + month.days
    exits = turned & (register.method[wives] != NO_METHOD)
    _stop_method(register, wives[exits], np.maximum(fifty[exits], month.start))
    register.busy[wives[exits]] = True
    wives, age = wives[~turned], age[~turned]

    method = register.method[wives]
    users = method != NO_METHOD
    sterilized = users & STERILIZATION[method]
    # Starts make up for the stops and close part of the gap to CPR_BY_AGE in each age group: the
    # population programme recruits new users to hold prevalence at its plan targets, against the
    # newlyweds and new mothers who join the count without a method.
    group = (age - 15) // 5
    groups = 7
    group_of_age = np.clip((AGES - 15) // 5, 0, groups - 1)
    by_age = np.bincount(age, minlength=MAX_AGE + 1)
    users_by_age = np.bincount(age[users], minlength=MAX_AGE + 1)
    expected_users = np.bincount(group_of_age, weights=by_age * CPR_BY_AGE, minlength=groups)
    users_by_group = np.bincount(group_of_age, weights=users_by_age, minlength=groups)
    changeable = users_by_group - np.bincount(group[sterilized], minlength=groups)
    non_users = np.bincount(group_of_age, weights=by_age, minlength=groups) - users_by_group
    wanted = np.maximum(STOP_RATE * changeable + CPR_CATCH_UP * (expected_users - users_by_group), 0)
    start_rate = np.divide(wanted, non_users, out=np.zeros(groups), where=non_users > 0)

    def chance(positions: Ints) -> F64:
        change_rate = np.where(sterilized[positions], 0.0, STOP_RATE + SWITCH_BY_METHOD[method[positions]])
        result: F64 = np.where(users[positions], change_rate, start_rate[group[positions]])
        return result

    ceiling = max(STOP_RATE + float(SWITCH_BY_METHOD.max()), float(start_rate.max()))
    changing = _thin(rng, np.arange(len(wives)), ceiling, chance)
    was_user = users[changing]
    switch_rate = SWITCH_BY_METHOD[method[changing]]
    stop = was_user & (rng.random(len(changing)) * (STOP_RATE + switch_rate) < STOP_RATE)
    switch = was_user & ~stop
    new_method = np.full(len(changing), NO_METHOD, dtype=np.int64)
    new_method[~was_user] = _draw_methods(rng, age[changing[~was_user]])
    new_method[switch] = _draw_methods(rng, age[changing[switch]], method[changing[switch]])
    women = wives[changing]
    register.method[women] = new_method
    day = month.event_days(rng, len(women))
    register.log.add(
        EventType.CONTRACEPTION_CHANGE, day, register.commune[women], person=women, method=new_method
    )


def _dissolve_empty_households(register: _Register) -> None:
    count = register.household_count
    touched = np.flatnonzero(register.household_left[:count] != NO_DAY)
    empty = touched[(register.household_size[touched] == 0) & register.household_active[touched]]
    register.household_active[empty] = False
    register.log.add(
        EventType.HOUSEHOLD_DISSOLVED,
        register.household_left[empty],
        register.household_commune[empty],
        household=empty,
    )

"""The atom lattice: per access tier, the smallest cells of each measure that may be published.

An *atom set* fixes, for one base measure, the areas its atoms are counted on, the bands of each
breakdown axis and the time unit. Disclosure control perturbs every atom once per release; every
answer is then a sum of published atoms (DESIGN.md, "Disclosure control"). A query that needs a finer
cell than any atom set of its tier offers is refused, with the edges it may use.

Starting point, DESIGN.md: public population = commune x sex x 5-year band x month; births = commune
x sex x quarter, and province x mother's 5-year band x year (so TFR is public at province level);
deaths = commune x sex x broad age x year; contraceptive users (sensitive health data, Decree
13/2023) = commune x year x broad age x method group. The department tier has finer atoms.
Every official indicator is answerable by the public at province level at least (tested).

*Invariants* are the totals published exactly: the atoms are nudged (+-1 on atoms >= 20) until they
add up to the true province totals over the invariant's kept axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Final

from app.cube import (
    AXIS_SIZES,
    BIRTHS,
    CONTRACEPTIVE_USERS,
    DEATHS,
    DIVORCES,
    HOUSEHOLDS,
    IN_MIGRANTS,
    MARRIAGES,
    MARRIED_WOMEN,
    MAX_AGE,
    METHODS,
    OUT_MIGRANTS,
    POPULATION,
    Axis,
    Measure,
    MeasureKind,
)
from auth.principal import Tier
from connectors.canonical import MODERN_METHODS


class TimeGrain(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def months(self) -> int:
        return _GRAIN_MONTHS[self.value]

    def ends_unit(self, month: int) -> bool:
        """Whether `month` (a month index) is the last month of a time unit of this grain."""
        return (month % 12 + 1) % self.months == 0


_GRAIN_MONTHS: Final = {"month": 1, "quarter": 3, "year": 12}


class AreaGrain(StrEnum):
    """What atoms are counted on. Commune atoms sum to any area; coarser ones only to their unions."""

    COMMUNE = "commune"  # the register's communes (and the parts of those split by a crosswalk)
    DISTRICT = "district"  # districts of the register's geography
    PROVINCE = "province"  # provinces of the register's geography
    EVERY_AREA = "every_area"  # one atom per area of every level: for flows that are not additive


# Band edges: the first single value of each band, in order.
Edges = tuple[int, ...]
EVERY_VALUE: Final[Edges] = ()  # placeholder resolved per axis: one band per value
WHOLE: Final[Edges] = (0,)  # one band: the axis summed
AGE_5: Final[Edges] = (*range(0, MAX_AGE, 5), MAX_AGE)  # 0-4, ..., 95-99, 100+
AGE_5_INFANT: Final[Edges] = (0, 1, *range(5, MAX_AGE, 5), MAX_AGE)  # infants apart, for IMR
AGE_BROAD: Final[Edges] = (0, 1, 5, 15, 50, 65)  # deaths: infants, children, youth, adults, elderly
AGE_MIGRATION: Final[Edges] = (0, 15, 25, 35, 50, 65)
AGE_CONTRACEPTION: Final[Edges] = (0, 15, 25, 35, 50)  # 15-24, 25-34, 35-49 (others are zero)
METHOD_GROUP: Final[Edges] = (0, len(MODERN_METHODS))  # modern, traditional
BIRTH_ORDER_EACH: Final[Edges] = (0, 1, 2)  # 1, 2, 3+

assert all(m in MODERN_METHODS for m in METHODS[: len(MODERN_METHODS)]), "modern methods come first"


@dataclass(frozen=True)
class Invariant:
    """Province totals over `keeps` (the other axes summed) that are published exactly."""

    keeps: tuple[Axis, ...]


@dataclass(frozen=True)
class AtomSet:
    name: str
    measure: Measure
    area: AreaGrain
    time: TimeGrain
    bands: tuple[Edges, ...]  # per axis of the measure, in the measure's axis order
    invariant: Invariant | None = None

    def __post_init__(self) -> None:
        if len(self.bands) != len(self.measure.axes):
            raise ValueError(f"{self.name}: one band list per axis of {self.measure.name}")
        for axis, edges in zip(self.measure.axes, self.bands, strict=True):
            if edges[0] != 0 or list(edges) != sorted(set(edges)) or edges[-1] >= AXIS_SIZES[axis]:
                raise ValueError(f"{self.name}: bad band edges on {axis}: {edges}")

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(e) for e in self.bands)

    @cached_property
    def size(self) -> int:
        size = 1
        for n in self.shape:
            size *= n
        return size

    def edges(self, axis: Axis) -> Edges:
        return self.bands[self.measure.axes.index(axis)]

    @property
    def is_stock(self) -> bool:
        return self.measure.kind is MeasureKind.STOCK


def _each(axis: Axis) -> Edges:
    return tuple(range(AXIS_SIZES[axis]))


def _atoms(
    name: str,
    measure: Measure,
    area: AreaGrain,
    time: TimeGrain,
    bands: dict[Axis, Edges],
    keeps: tuple[Axis, ...] | None = None,
) -> AtomSet:
    resolved = tuple(
        (_each(axis) if bands.get(axis, WHOLE) == EVERY_VALUE else bands.get(axis, WHOLE))
        for axis in measure.axes
    )
    return AtomSet(name, measure, area, time, resolved, None if keeps is None else Invariant(keeps))


S, A, MA, BO, ME = Axis.SEX, Axis.AGE, Axis.MOTHER_AGE, Axis.BIRTH_ORDER, Axis.METHOD
C, D, P, E = AreaGrain.COMMUNE, AreaGrain.DISTRICT, AreaGrain.PROVINCE, AreaGrain.EVERY_AREA
MONTH, QUARTER, YEAR = TimeGrain.MONTH, TimeGrain.QUARTER, TimeGrain.YEAR

HOUSEHOLD_ATOMS: Final = _atoms("households.month", HOUSEHOLDS, C, MONTH, {}, keeps=())

# In the order a query tries them: the first atom set that can answer a need is used.
PUBLIC_ATOMS: Final[tuple[AtomSet, ...]] = (
    _atoms("population.sex.age5.month", POPULATION, C, MONTH, {S: EVERY_VALUE, A: AGE_5}, keeps=(S, A)),
    HOUSEHOLD_ATOMS,
    _atoms("married_women.age5.year", MARRIED_WOMEN, C, YEAR, {A: AGE_5}, keeps=(A,)),
    _atoms(
        "contraceptive_users.group.age3.year",
        CONTRACEPTIVE_USERS,
        C,
        YEAR,
        {ME: METHOD_GROUP, A: AGE_CONTRACEPTION},
        keeps=(ME, A),
    ),
    _atoms("births.sex.quarter", BIRTHS, C, QUARTER, {S: EVERY_VALUE}, keeps=(S,)),
    _atoms("births.sex.month.province", BIRTHS, P, MONTH, {S: EVERY_VALUE}, keeps=(S,)),
    _atoms("births.mother_age5.year.province", BIRTHS, P, YEAR, {MA: AGE_5}, keeps=()),
    _atoms("births.order.year.district", BIRTHS, D, YEAR, {BO: BIRTH_ORDER_EACH}, keeps=(BO,)),
    _atoms("deaths.sex.age6.year", DEATHS, C, YEAR, {S: EVERY_VALUE, A: AGE_BROAD}, keeps=(S, A)),
    _atoms("deaths.sex.month.province", DEATHS, P, MONTH, {S: EVERY_VALUE}, keeps=(S,)),
    _atoms("in_migrants.sex.age6.year", IN_MIGRANTS, E, YEAR, {S: EVERY_VALUE, A: AGE_MIGRATION}),
    _atoms("out_migrants.sex.age6.year", OUT_MIGRANTS, E, YEAR, {S: EVERY_VALUE, A: AGE_MIGRATION}),
    _atoms("marriages.year", MARRIAGES, C, YEAR, {}, keeps=()),
    _atoms("divorces.year", DIVORCES, C, YEAR, {}, keeps=()),
)

DEPARTMENT_ATOMS: Final[tuple[AtomSet, ...]] = (
    _atoms("population.sex.age1.month", POPULATION, C, MONTH, {S: EVERY_VALUE, A: EVERY_VALUE}, keeps=(S, A)),
    HOUSEHOLD_ATOMS,
    _atoms("married_women.age1.month", MARRIED_WOMEN, C, MONTH, {A: EVERY_VALUE}, keeps=(A,)),
    _atoms(
        "contraceptive_users.method.age5.quarter",
        CONTRACEPTIVE_USERS,
        C,
        QUARTER,
        {ME: EVERY_VALUE, A: AGE_5},
        keeps=(ME, A),
    ),
    _atoms(
        "births.sex.mother_age5.order.month",
        BIRTHS,
        C,
        MONTH,
        {S: EVERY_VALUE, MA: AGE_5, BO: BIRTH_ORDER_EACH},
        keeps=(S,),
    ),
    _atoms("deaths.sex.age5.month", DEATHS, C, MONTH, {S: EVERY_VALUE, A: AGE_5_INFANT}, keeps=(S, A)),
    _atoms("in_migrants.sex.age5.month", IN_MIGRANTS, E, MONTH, {S: EVERY_VALUE, A: AGE_5}),
    _atoms("out_migrants.sex.age5.month", OUT_MIGRANTS, E, MONTH, {S: EVERY_VALUE, A: AGE_5}),
    _atoms("marriages.month", MARRIAGES, C, MONTH, {}, keeps=()),
    _atoms("divorces.month", DIVORCES, C, MONTH, {}, keeps=()),
)

LATTICES: Final[dict[Tier, tuple[AtomSet, ...]]] = {
    Tier.PUBLIC: PUBLIC_ATOMS,
    Tier.DEPARTMENT: DEPARTMENT_ATOMS,
}

# Each atom set once (the household atoms are shared by both tiers: one set, one value per cell).
ATOM_SETS: Final[dict[str, AtomSet]] = {a.name: a for lattice in LATTICES.values() for a in lattice}

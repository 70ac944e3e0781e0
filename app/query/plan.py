"""Query planning against a tier's atom lattice: what each indicator reads, and which atoms answer it.

An indicator reads base measures at some resolution: the sexes apart or not, age bands with given
edges, the mother's age, birth order or method group, at stock months or over flow periods. The plan
picks, per measure, the first atom set of the tier that resolves all of it for the requested areas;
when none does, the request is finer than what is published and is refused with the edges allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

from app.cube import AXIS_SIZES, MAX_AGE, Axis
from app.errors import Unprocessable
from app.privacy.lattice import ATOM_SETS, LATTICES, AreaGrain, AtomSet
from app.query.periods import Period
from auth.principal import Tier

Use = Literal["stock", "average", "flow"]
SexNeed = Literal["slice", "always", "never"]


class FinerThanPublished(Unprocessable):
    code = "finer-than-published"
    title = "Finer than the published atoms"


@dataclass(frozen=True)
class Read:
    """One base measure an indicator reads, and at what resolution."""

    measure: str
    use: Use
    sex: SexNeed = "never"  # slice: as the query's sex filter/breakdown; always: both sexes apart
    age: Literal["slice", "never"] | tuple[int, ...] = "never"  # slice: the query's bands; or fixed edges
    age_axis: Axis = Axis.AGE
    also_slice_age: bool = False  # fixed edges, plus the query's bands (ASFR's own ranges)
    other: tuple[tuple[Axis, tuple[int, ...]], ...] = ()  # e.g. birth order 3+: ((BIRTH_ORDER, (0, 2)),)


_FIVE_YEAR_15_49: Final = tuple(range(15, 51, 5))
_P, _B, _D = "population", "births", "deaths"

INDICATOR_READS: Final[dict[str, tuple[Read, ...]]] = {
    "POP": (Read(_P, "stock", "slice", "slice"),),
    "HH": (Read("households", "stock"),),
    "AHS": (Read(_P, "stock"), Read("households", "stock")),
    "SR": (Read(_P, "stock", "always", "slice"),),
    "SRB": (Read(_B, "flow", "always"),),
    "BIRTHS": (Read(_B, "flow", "slice"),),
    "CBR": (Read(_B, "flow"), Read(_P, "average")),
    "ASFR": (
        Read(_B, "flow", age=(15, 50), age_axis=Axis.MOTHER_AGE, also_slice_age=True),
        Read(_P, "average", "always", (15, 50), also_slice_age=True),
    ),
    "TFR": (
        Read(_B, "flow", age=_FIVE_YEAR_15_49, age_axis=Axis.MOTHER_AGE),
        Read(_P, "average", "always", _FIVE_YEAR_15_49),
    ),
    "GFR": (Read(_B, "flow"), Read(_P, "average", "always", (15, 50))),
    "BIRTH3": (Read(_B, "flow", other=((Axis.BIRTH_ORDER, (0, 2)),)),),
    "DEATHS": (Read(_D, "flow", "slice", "slice"),),
    "CDR": (Read(_D, "flow"), Read(_P, "average")),
    "IMR": (Read(_D, "flow", age=(0, 1)), Read(_B, "flow")),
    "NIR": (Read(_B, "flow"), Read(_D, "flow"), Read(_P, "average")),
    "IN_MIGRANTS": (Read("in_migrants", "flow", "slice", "slice"),),
    "OUT_MIGRANTS": (Read("out_migrants", "flow", "slice", "slice"),),
    "IR": (Read("in_migrants", "flow", "slice", "slice"), Read(_P, "average", "slice", "slice")),
    "OR": (Read("out_migrants", "flow", "slice", "slice"), Read(_P, "average", "slice", "slice")),
    "NMR": (
        Read("in_migrants", "flow", "slice", "slice"),
        Read("out_migrants", "flow", "slice", "slice"),
        Read(_P, "average", "slice", "slice"),
    ),
    "GR": (
        Read(_B, "flow"),
        Read(_D, "flow"),
        Read("in_migrants", "flow"),
        Read("out_migrants", "flow"),
        Read(_P, "average"),
    ),
    "MWRA": (Read("married_women", "stock", age="slice"),),
    "CPR": (Read("contraceptive_users", "stock", age="slice"), Read("married_women", "stock", age="slice")),
    "CPR_MODERN": (
        Read("contraceptive_users", "stock", age="slice", other=((Axis.METHOD, (0, 7)),)),
        Read("married_women", "stock", age="slice"),
    ),
    "MAR": (Read("marriages", "flow"),),
    "CMR": (Read("marriages", "flow"), Read(_P, "average")),
    "DIV": (Read("divorces", "flow"),),
    "URB": (Read(_P, "stock"),),
    "AGE_0_14": (Read(_P, "stock", "slice", (0, 15)),),
    "AGE_15_64": (Read(_P, "stock", "slice", (15, 65)),),
    "AGE_65P": (Read(_P, "stock", "slice", (65,)),),
    "AGE_60P": (Read(_P, "stock", "slice", (60,)),),
    "DR_CHILD": (Read(_P, "stock", age=(0, 15, 65)),),
    "DR_OLD": (Read(_P, "stock", age=(0, 15, 65)),),
    "DR_TOTAL": (Read(_P, "stock", age=(0, 15, 65)),),
    "AI": (Read(_P, "stock", age=(0, 15, 60)),),
    "MEDIAN_AGE": (Read(_P, "stock", "slice", "slice"),),  # interpolated within whatever bands exist
}


@dataclass
class Need:
    """What one measure must resolve for a query: summed over every Read of it."""

    measure: str
    sexes_apart: bool = False
    edges: dict[Axis, set[int]] = field(default_factory=dict)
    stock_months: set[int] = field(default_factory=set)
    flow_periods: list[Period] = field(default_factory=list)


def _range_edges(ranges: Iterable[tuple[int, int | None]]) -> set[int]:
    edges: set[int] = set()
    for low, high in ranges:
        edges.add(low)
        if high is not None and high < MAX_AGE:
            edges.add(high + 1)
    return edges


def needs(
    indicator: str,
    periods: Sequence[Period],
    slice_ranges: Sequence[tuple[int, int | None]],
    slice_by_sex: bool,
) -> dict[str, Need]:
    """Per measure, what the indicator's formula will read for these periods and breakdown cells."""
    result: dict[str, Need] = {}
    slice_edges = _range_edges(slice_ranges)
    for read in INDICATOR_READS[indicator]:
        need = result.setdefault(read.measure, Need(read.measure))
        need.sexes_apart |= read.sex == "always" or (read.sex == "slice" and slice_by_sex)
        if read.age == "slice":
            need.edges.setdefault(read.age_axis, set()).update(slice_edges)
        elif read.age != "never":
            fixed = need.edges.setdefault(read.age_axis, set())
            fixed.update(read.age)
            if read.also_slice_age:
                fixed.update(slice_edges)
        for axis, edges in read.other:
            need.edges.setdefault(axis, set()).update(edges)
        for period in periods:
            if read.use == "stock":
                need.stock_months.add(period.last_month)
            elif read.use == "average":
                need.stock_months.update(range(period.first_month - 1, period.last_month + 1))
            else:
                need.flow_periods.append(period)
    return result


@lru_cache(maxsize=256)
def _band_edges(name: str) -> tuple[tuple[Axis, frozenset[int]], ...]:
    """Per axis of an atom set, the edges its bands start at, with the axis's end."""
    atoms = ATOM_SETS[name]
    return tuple((axis, frozenset(atoms.edges(axis)) | {AXIS_SIZES[axis]}) for axis in atoms.measure.axes)


def _covers(atoms: AtomSet, need: Need) -> bool:
    for axis, edges in _band_edges(atoms.name):
        wanted = set(need.edges.get(axis, ())) | ({0, 1} if axis is Axis.SEX and need.sexes_apart else set())
        if not wanted <= edges:
            return False
    if not all(atoms.time.ends_unit(m) for m in need.stock_months):
        return False
    months = atoms.time.months
    return all(
        p.first_month % 12 % months == 0 and atoms.time.ends_unit(p.last_month) for p in need.flow_periods
    )


def _covers_areas(atoms: AtomSet, areas: Sequence[str], answerable: dict[str, set[str]]) -> bool:
    if atoms.area in (AreaGrain.COMMUNE, AreaGrain.EVERY_AREA):
        return True
    allowed = answerable.get(atoms.area.value, set())
    return all(a in allowed for a in areas)


def _exact_totals(atoms: AtomSet) -> bool:
    """Province atoms whose invariant keeps every banded axis: each of them is benchmarked exact."""
    if atoms.area is not AreaGrain.PROVINCE or atoms.invariant is None:
        return False
    keeps = atoms.invariant.keeps
    return all(a in keeps or len(e) == 1 for a, e in zip(atoms.measure.axes, atoms.bands, strict=True))


@lru_cache(maxsize=64)
def _candidates(tier: Tier, measure: str) -> tuple[AtomSet, ...]:
    """The tier's atom sets of a measure in the order `choose` tries them (worked out once)."""
    return tuple(
        sorted((a for a in LATTICES[tier] if a.measure.name == measure), key=lambda a: not _exact_totals(a))
    )


def choose(tier: Tier, need: Need, areas: Sequence[str], answerable: dict[str, set[str]]) -> AtomSet:
    """The atom set of the tier's lattice that answers the need for all these areas.

    Exact province totals come first (a province's year of births is then the sum of the very months it
    publishes, and exact); then the lattice order, finest areas first, so districts and communes add up.
    Coarser perturbed atoms (a district's birth orders, a province's mothers' ages) serve only what the
    finer ones cannot."""
    for atoms in _candidates(tier, need.measure):
        if _covers(atoms, need) and _covers_areas(atoms, areas, answerable):
            return atoms
    candidates = [a for a in LATTICES[tier] if a.measure.name == need.measure]
    raise FinerThanPublished(
        f"{need.measure} is not published for the {tier.value} tier at the detail asked; "
        + "; ".join(describe(a) for a in candidates)
        + ". Ask for whole bands, whole periods or larger areas"
        + (", or use a department credential" if tier is Tier.PUBLIC else ""),
        allowed=[allowed(a) for a in candidates],
    )


def describe(atoms: AtomSet) -> str:
    """How a data user reads an atom set: areas, time unit and band edges."""
    parts = [f"by {atoms.area.value.replace('_', ' ')}", f"per {atoms.time.value}"]
    for axis, edges in zip(atoms.measure.axes, atoms.bands, strict=True):
        if len(edges) == 1:
            continue
        if len(edges) == AXIS_SIZES[axis]:
            parts.append(f"{axis.value} in single values")
        else:
            parts.append(f"{axis.value} bands starting at {','.join(map(str, edges))}")
    return f"{atoms.measure.name} " + " x ".join(parts)


def allowed(atoms: AtomSet) -> dict[str, object]:
    return {
        "measure": atoms.measure.name,
        "areas": atoms.area.value,
        "time_unit": atoms.time.value,
        "band_edges": {
            axis.value: list(edges) for axis, edges in zip(atoms.measure.axes, atoms.bands, strict=True)
        },
    }


def time_unit_months(atoms: AtomSet, first_month: int, last_month: int) -> list[int]:
    """The unit-end months of an atom set between two months (inclusive)."""
    return [m for m in range(first_month, last_month + 1) if atoms.time.ends_unit(m)]

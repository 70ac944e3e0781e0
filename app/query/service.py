"""The query service: indicator x areas x periods x breakdowns -> released values, from a release.

This is the one implementation behind REST and GraphQL (and the explorer page, when it is built).
For the public and department tiers it reads only published atoms (planned against the tier's
lattice, app.query.plan); for the internal tier, the true cube. Its values become publishable only
through app.privacy.released.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from app.cube import AGES, AXIS_SIZES, MAX_AGE, MEASURES, Axis, Layout, decode_row, month_label
from app.db import waiting
from app.errors import InvalidParameter, UnknownArea, UnknownRelease, Unprocessable
from app.models import Indicator, Release
from app.privacy.cellkey import Bundle, bundles
from app.privacy.lattice import ATOM_SETS, AtomSet, TimeGrain
from app.privacy.released import CENSUS_METHOD, INTERNAL_METHOD, Computed, ReleasedResult, release_result
from app.query.indicators import FORMULAS, FloatArray, Slice, Value, ages
from app.query.periods import Period
from app.query.plan import Need, choose, needs
from app.query.rows import PublishedRows, Row, Wanted
from app.reference import Snapshot
from app.repositories.releases import ReleaseRepository
from auth.principal import Tier

BREAKDOWNS: Final = ("sex", "age5", "age1", "age")
SEX_CODES: Final = {"male": 0, "female": 1}


@dataclass(frozen=True)
class AgeRange:
    low: int
    high: int | None  # None: open-ended (60+)

    @property
    def label(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"

    @property
    def mask(self) -> np.ndarray:
        return ages(self.low, self.high)


def parse_age_ranges(text: str) -> tuple[AgeRange, ...]:
    """`15-49`, `60+`, `5`, comma-separated; ages are completed years 0..100+."""
    ranges: list[AgeRange] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            if part.endswith("+"):
                ranges.append(AgeRange(int(part[:-1]), None))
            elif "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                ranges.append(AgeRange(low, high))
            else:
                ranges.append(AgeRange(int(part), int(part)))
        except ValueError:
            raise InvalidParameter(f"age '{part}' is not a range like 15-49, 60+ or 5") from None
        last = ranges[-1]
        if (
            last.low < 0
            or last.low > MAX_AGE
            or (last.high is not None and not last.low <= last.high <= MAX_AGE)
        ):
            raise InvalidParameter(f"age '{part}' must lie within 0..{MAX_AGE} (100 means 100 and over)")
    return tuple(ranges)


@dataclass(frozen=True)
class ObservationQuery:
    indicator: str
    geography: str
    areas: tuple[str, ...]
    periods: tuple[Period, ...]
    sex: str | None = None
    age: tuple[AgeRange, ...] = ()
    by: tuple[str, ...] = ()
    release: str | None = None


class TooSparse(Unprocessable):
    code = "too-sparse"
    title = "Table too sparse to publish"


# A department table is refused when most of its non-zero cells are below this (DESIGN.md: a
# sparsity check, so that detailed tables do not become lists of small groups).
TINY: Final = 5
SPARSE_SHARE: Final = 0.5
SPARSE_MIN_CELLS: Final = 10

Key = tuple[str, str, int]  # measure, area, month
ValueKind = Literal["stock", "average", "flow"]
Bands = dict[tuple[str, str], dict[Axis, tuple[int, ...]]]  # (measure, area) -> band starts per axis


@dataclass(frozen=True)
class _Group:
    labels: dict[str, str]
    slice: Slice


def _groups(indicator: Indicator, query: ObservationQuery) -> tuple[_Group, ...]:
    """The breakdown cells of a query: labels and the sexes and ages each covers."""
    return _breakdown_cells(indicator.code, indicator.dimensions, query.by, query.sex, query.age)


@lru_cache(maxsize=1024)
def _breakdown_cells(
    code: str, indicator_dimensions: str, by: tuple[str, ...], sex: str | None, age: tuple[AgeRange, ...]
) -> tuple[_Group, ...]:
    """Worked out once per spelling of a breakdown (a handful serve most requests); the masks are
    read-only, since every query that asks the same shares them."""
    dimensions = set(indicator_dimensions.split(",")) - {""}
    unknown = set(by) - set(BREAKDOWNS)
    if unknown:
        raise InvalidParameter(f"unknown breakdown {', '.join(sorted(unknown))}; use {', '.join(BREAKDOWNS)}")
    if ("sex" in by or sex) and "sex" not in dimensions:
        raise Unprocessable(
            f"{code} has no breakdown by sex; its breakdowns: {indicator_dimensions or 'none'}"
        )
    age_by = [b for b in by if b.startswith("age")]
    if (age_by or age) and "age" not in dimensions:
        raise Unprocessable(
            f"{code} has no breakdown by age; its breakdowns: {indicator_dimensions or 'none'}"
        )
    if len(age_by) > 1:
        raise InvalidParameter("choose one age breakdown: age5, age1 or age (the ranges given in `age`)")
    if "age" in by and not age:
        raise InvalidParameter(
            "by=age breaks down by the ranges given in `age`; give them (e.g. age=0-14,15-64,65+)"
        )

    sexes: list[tuple[dict[str, str], np.ndarray]]
    if "sex" in by:
        chosen = [sex] if sex else list(SEX_CODES)
        sexes = [({"sex": s}, np.arange(2) == SEX_CODES[s]) for s in chosen]
    elif sex:
        sexes = [({"sex": sex}, np.arange(2) == SEX_CODES[sex])]
    else:
        sexes = [({}, np.ones(2, dtype=bool))]

    allowed = np.zeros(AGES, dtype=bool)
    for r in age:
        allowed |= r.mask
    if not age:
        allowed[:] = True
    age_groups: list[tuple[dict[str, str], np.ndarray]]
    if age_by == ["age5"]:
        bands = [AgeRange(low, low + 4) for low in range(0, MAX_AGE, 5)] + [AgeRange(MAX_AGE, None)]
        age_groups = [({"age": b.label}, b.mask) for b in bands if (b.mask & allowed).any()]
        if any((b.mask & ~allowed).any() for b in bands if (b.mask & allowed).any()):
            raise InvalidParameter("with by=age5, `age` must consist of whole 5-year bands (e.g. 15-49, 60+)")
    elif age_by == ["age1"]:
        age_groups = [
            ({"age": AgeRange(a, a if a < MAX_AGE else None).label}, ages(a, a))
            for a in (int(i) for i in np.flatnonzero(allowed))
        ]
    elif age_by == ["age"]:
        age_groups = [({"age": r.label}, r.mask) for r in age]
    elif age:
        age_groups = [({"age": ",".join(r.label for r in age)}, allowed)]
    else:
        age_groups = [({}, allowed)]
    groups = tuple(
        _Group({**sex_labels, **age_labels}, Slice(sex_mask.copy(), age_mask.copy()))
        for sex_labels, sex_mask in sexes
        for age_labels, age_mask in age_groups
    )
    for group in groups:
        group.slice.sex.setflags(write=False)
        group.slice.age.setflags(write=False)
    return groups


def count_cells(indicator: Indicator, query: ObservationQuery) -> int:
    """Observations a query asks for: the one cost model of REST's cell cap and GraphQL's query cost."""
    return len(query.areas) * len(query.periods) * len(_groups(indicator, query))


class _Cells:
    """Counts as a query read them, per (measure, area, month). A value of a period combines months
    (a flow adds them, an average weighs them) before its counts are expanded onto the measure's
    axes: expansion is linear, so that is the expansion of each month, added up, at a fraction of
    the work. _CubeCells hold the cube's full arrays, _PublishedCells published atoms."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, ValueKind, Period], tuple[FloatArray, bool]] = {}

    def months(self, measure: str, area: str, months: Sequence[int]) -> tuple[FloatArray, bool]:
        """The counts of each month as stored, stacked (zeros where none are), and whether all are
        exact."""
        raise NotImplementedError

    def expand(self, measure: str, area: str, stored: FloatArray) -> FloatArray:
        """Combined stored counts onto the measure's full axes."""
        raise NotImplementedError

    def value(self, measure: str, area: str, kind: ValueKind, period: Period) -> tuple[FloatArray, bool]:
        """A period's stock (at its end), average (trapezoid over month-end stocks) or flow (summed
        over its months), and whether it is exact; worked out once per query, since the breakdown
        cells of an area all read the same."""
        key = (measure, area, kind, period)
        found = self._values.get(key)
        if found is None:
            # Counts are whole numbers, so these sums are exact in any order.
            if kind == "stock":
                stacked, exact = self.months(measure, area, [period.last_month])
                stored = stacked[0]
            elif kind == "average":
                stacked, exact = self.months(measure, area, [period.first_month - 1, *period.months])
                ends = (stacked[0] + stacked[-1]) / 2
                stored = (stacked[1:-1].sum(axis=0) + ends) / (len(stacked) - 1)
            else:
                stacked, exact = self.months(measure, area, period.months)
                stored = stacked.sum(axis=0)
            found = self._values[key] = (self.expand(measure, area, stored), exact)
        return found


class _CubeCells(_Cells):
    """The internal tier's true counts: the cube's full arrays, exact."""

    def __init__(self, arrays: dict[Key, FloatArray]) -> None:
        super().__init__()
        self.arrays = arrays

    def months(self, measure: str, area: str, months: Sequence[int]) -> tuple[FloatArray, bool]:
        zeros = np.zeros(MEASURES[measure].shape)
        stacked = np.array([self.arrays.get((measure, area, month), zeros) for month in months])
        return stacked, True

    def expand(self, measure: str, area: str, stored: FloatArray) -> FloatArray:
        return stored


class _PublishedCells(_Cells):
    """Published atoms as their rows hold them: each (measure, area) in the atom set the plan picked."""

    def __init__(
        self,
        rows: dict[tuple[str, str, int], Row],
        chosen: dict[tuple[str, str], AtomSet],
        layouts: dict[TimeGrain, Bundle],
    ) -> None:
        super().__init__()
        self.rows, self.chosen, self.layouts = rows, chosen, layouts

    def months(self, measure: str, area: str, months: Sequence[int]) -> tuple[FloatArray, bool]:
        atoms = self.chosen[(measure, area)]
        start = self.layouts[atoms.time].offset(atoms.name)
        stop = start + atoms.size
        grain, unit, rows = atoms.time, atoms.time.value, self.rows
        zeros = np.zeros(atoms.size)
        exact = True
        parts: list[NDArray[np.int32] | FloatArray] = []
        for month in months:
            row = rows.get((unit, area, month))
            if row is None:
                # A coarser time unit's counts sit at its last month; absent rows read as zeros, and
                # are not exact.
                parts.append(zeros)
                exact = exact and not grain.ends_unit(month)
                continue
            values, exact_values = row
            parts.append(values[start:stop])
            if exact and (exact_values is None or not exact_values[start:stop].all()):
                exact = False
        return np.array(parts, dtype=np.float64), exact

    def expand(self, measure: str, area: str, stored: FloatArray) -> FloatArray:
        return expand(self.chosen[(measure, area)], stored)


class _AreaCounts:
    """The Counts view of one area and one period over fetched cells, noting whether all were exact."""

    def __init__(self, cells: _Cells, bands: Bands, area: str, period: Period, urban: FloatArray | None):
        self.cells, self._bands = cells, bands
        self.area, self.period, self._urban = area, period, urban
        self.years = period.years
        self.exact = True

    def _value(self, measure: str, kind: ValueKind) -> FloatArray:
        value, exact = self.cells.value(measure, self.area, kind, self.period)
        self.exact = self.exact and exact
        return value

    def stock(self, measure: str) -> FloatArray:
        return self._value(measure, "stock")

    def average(self, measure: str) -> FloatArray:
        return self._value(measure, "average")

    def flow(self, measure: str) -> FloatArray:
        return self._value(measure, "flow")

    def urban_population(self) -> FloatArray:
        return self._urban if self._urban is not None else np.zeros(MEASURES["population"].shape)

    def bands(self, measure: str, axis: Axis) -> tuple[int, ...]:
        return self._bands.get((measure, self.area), {}).get(axis, tuple(range(AXIS_SIZES[axis])))


def expand(atoms: AtomSet, values: NDArray[np.int32] | FloatArray) -> FloatArray:
    """Atoms onto the measure's full axes, each band's value at its first single value (so a sum over
    any union of whole bands is the sum of its atoms)."""
    if not atoms.bands:
        return values.reshape(()).astype(np.float64)
    if atoms.shape == atoms.measure.shape:  # single values on every axis: the atoms are the cells
        return values.reshape(atoms.shape).astype(np.float64)
    full = np.zeros(atoms.measure.shape, dtype=np.float64)
    full[_band_starts(atoms.name)] = values.reshape(atoms.shape)
    return full


@lru_cache(maxsize=256)
def _band_starts(name: str) -> tuple[NDArray[np.intp], ...]:
    return np.ix_(*(np.asarray(e) for e in ATOM_SETS[name].bands))


def _layout(release: Release) -> Layout:
    return Layout.named(_note(release.id, release.note)["layout"])


@lru_cache(maxsize=64)
def _answerable(release_id: str, note: str, geography: str) -> dict[str, set[str]]:
    """Per area grain, the areas whose atoms at that grain the release publishes (parsed once)."""
    per_grain = _note(release_id, note)["disclosure"]["answerable"]
    return {grain: set(per_geography.get(geography, ())) for grain, per_geography in per_grain.items()}


@lru_cache(maxsize=256)
def _covered(release_id: str, note: str, geography: str, level: str) -> tuple[str, ...]:
    partial = _partial(release_id, note, geography)
    levels: dict[str, str] = _note(release_id, note).get("areas", {}).get(geography, {})
    return tuple(sorted(code for code, at in levels.items() if at == level and code not in partial))


@lru_cache(maxsize=64)
def _partial(release_id: str, note: str, geography: str) -> frozenset[str]:
    """Areas the register covers only in part (parsed once)."""
    return frozenset(_note(release_id, note).get("partial", {}).get(geography, []))


@lru_cache(maxsize=64)
def _note(release_id: str, note: str) -> dict[str, Any]:
    """A release's description, parsed once: releases are immutable."""
    parsed: dict[str, Any] = json.loads(note or "{}")
    return parsed


class QueryService:
    def __init__(
        self, session: AsyncSession, max_cells: int, reference: Snapshot, rows: PublishedRows | None = None
    ) -> None:
        """`rows`: the process's published rows (app.query.rows); without it each query reads its own."""
        self.releases = ReleaseRepository(session)
        self.reference = reference
        self.max_cells = max_cells
        self.rows = rows if rows is not None else PublishedRows(0)

    async def resolve_release(self, release_id: str | None) -> Release:
        if release_id is None:
            release = self.reference.latest_release("register")
            if release is None:
                raise UnknownRelease(
                    "no register release is published yet; load one with `portal ingest` or `portal demo`"
                )
            return release
        # One the snapshot does not know yet may have been published a moment ago.
        release = self.reference.get_release(release_id)
        if release is None:
            async with waiting():
                release = await self.releases.get_release(release_id)
        if release is None:
            raise UnknownRelease(f"no release '{release_id}'; list them at /v1/releases")
        return release

    @staticmethod
    def covered_areas(release: Release, geography: str, level: str) -> list[str]:
        """Areas of one level that the release covers wholly, by code."""
        return list(_covered(release.id, release.note, geography, level))

    async def observations(self, query: ObservationQuery, tier: Tier) -> ReleasedResult:
        """Values of one indicator for areas x periods x breakdown cells, released for the tier."""
        indicator = self.reference.require_indicator(query.indicator)
        if not indicator.supported or indicator.code not in FORMULAS:
            raise Unprocessable(
                f"{indicator.code} is in the official catalogue but the register cannot compute it"
            )
        release = await self.resolve_release(query.release)
        if release.kind == "census":
            return await self._census(release, indicator, query, tier)
        groups = _groups(indicator, query)
        cells = count_cells(indicator, query)
        if cells > self.max_cells:
            raise Unprocessable(
                f"the request asks for {cells} cells; the limit is {self.max_cells}: split it, or use the bulk download",
                limit=self.max_cells,
                cells=cells,
            )
        await self._check_areas(release, query)
        self._check_periods(release, query.periods)

        ranges = [(r.low, r.high) for r in query.age] + [
            (int(b), int(b) + 4 if int(b) < MAX_AGE else None)
            for b in (g.labels["age"].split("-")[0].rstrip("+") for g in groups if "age" in g.labels)
            if "age5" in query.by
        ]
        if "age1" in query.by:
            ranges += [(a, a) for a in range(AGES) if any(g.slice.age[a] for g in groups)]
        question: Question = (
            indicator.code,
            query.periods,
            tuple(ranges),
            "sex" in query.by or query.sex is not None,
        )
        wanted = _needs(question)
        if tier is Tier.INTERNAL:
            read: _Cells = await self._true_cells(release, query, wanted)
            bands: Bands = {}
            method, ptable = INTERNAL_METHOD, None
        else:
            read, bands, versions = await self._published_cells(release, query, tier, question)
            ptable = versions
            method = _note(release.id, release.note)["disclosure"]["method"]
        urban = await self._urban(release, query, tier, question) if indicator.code == "URB" else {}

        formula = FORMULAS[indicator.code]
        computed = []
        for area in query.areas:
            for period in query.periods:
                for group in groups:
                    counts = _AreaCounts(read, bands, area, period, urban.get((area, period.last_month)))
                    result: Value = formula(counts, group.slice)
                    computed.append(
                        Computed(
                            area,
                            period.label,
                            group.labels,
                            result.value,
                            result.numerator,
                            result.denominator,
                            exact=counts.exact,
                        )
                    )
        if tier is Tier.DEPARTMENT:
            _check_sparsity(computed)
        return release_result(release, indicator, tier, computed, method, ptable)

    async def _true_cells(self, release: Release, query: ObservationQuery, wanted: dict[str, Need]) -> _Cells:
        """The internal tier: true base counts from the cube."""
        months = sorted({m for need in wanted.values() for m in _months_of(need)})
        layout = _layout(release)
        fetched: dict[Key, FloatArray] = {}
        async with waiting():
            stored = await self.releases.rows(release.id, query.geography, query.areas, months)
        for area, month, blob in stored:
            row = decode_row(blob)
            for measure in wanted:
                fetched[(measure, area, month)] = layout.extract(row, measure).astype(np.float64)
        return _CubeCells(fetched)

    async def _published_cells(
        self,
        release: Release,
        query: ObservationQuery,
        tier: Tier,
        question: Question,
        areas: Sequence[str] | None = None,
    ) -> tuple[_PublishedCells, Bands, str]:
        """Published atoms of the sets the plan picks.

        The set is picked per area, so an area's value never depends on which other areas a request
        lists alongside it."""
        areas = query.areas if areas is None else areas
        release_id, note, geography = release.id, release.note, query.geography
        disclosure = _note(release_id, note)["disclosure"]
        # The pick depends on an area only through the area grains that answer for it: one pick per
        # measure and kind of area, not per area (a province's communes are all of one kind).
        chosen: dict[tuple[str, str], AtomSet] = {}
        by_kind: dict[frozenset[str], tuple[tuple[str, AtomSet], ...]] = {}
        for area in areas:
            kind = _area_kind(release_id, note, geography, area)
            picks = by_kind.get(kind)
            if picks is None:
                picks = by_kind[kind] = _picks(tier, release_id, note, geography, question, kind, area)
            for measure, atoms in picks:
                chosen[(measure, area)] = atoms
        layouts = _bundles(release_id, tuple(disclosure["atom_sets"]))
        # Per time unit: the areas read from its bundle, and the months their reads end it.
        by_grain: dict[TimeGrain, dict[str, None]] = {}
        for (_, area), atoms in chosen.items():
            by_grain.setdefault(atoms.time, {})[area] = None
        months_of: dict[TimeGrain, set[int]] = {}
        for measure, grain in {(m, a.time) for picks in by_kind.values() for m, a in picks}:
            months_of.setdefault(grain, set()).update(_unit_months(question, measure, grain))
        rows = await self.rows.read(
            self.releases,
            release_id,
            geography,
            [
                Wanted(grain.value, list(by_area), sorted(months_of[grain]))
                for grain, by_area in by_grain.items()
            ],
            [grain.value for grain in layouts],
        )
        bands = {key: _axis_bands(atoms.name) for key, atoms in chosen.items()}
        versions = sorted({disclosure["atom_sets"][a.name] for a in chosen.values()})
        return _PublishedCells(rows, chosen, layouts), bands, ", ".join(versions)

    async def _check_areas(self, release: Release, query: ObservationQuery) -> None:
        release_id, release_note = release.id, release.note
        note = _note(release_id, release_note)
        covered: dict[str, str] = note.get("areas", {}).get(query.geography)
        if covered is None:
            raise Unprocessable(
                f"release {release.id} is expressed in {release.geographies}, not {query.geography}"
            )
        partial = _partial(release_id, release_note, query.geography)
        for code in query.areas:
            if code in covered and code not in partial:
                continue
            if self.reference.get_area(query.geography, code) is None:
                raise UnknownArea(f"no area with code '{code}' in geography {query.geography}")
            if code in partial:
                raise Unprocessable(
                    f"the register of release {release.id} covers only part of {query.geography} area {code}; "
                    "query its covered communes, or the areas of the register's own geography"
                )
            provinces = sorted(c for c, level in covered.items() if level == "province")
            raise Unprocessable(
                f"area {code} is outside release {release.id}, which covers provinces {', '.join(provinces)} of {query.geography}"
            )

    async def _census(
        self, release: Release, indicator: Indicator, query: ObservationQuery, tier: Tier
    ) -> ReleasedResult:
        """The census reference release: population totals (urban and rural) at 1 April 2019."""
        if indicator.code not in ("POP", "URB"):
            raise Unprocessable(
                f"release {release.id} (2019 census) answers POP and URB only, not {indicator.code}"
            )
        if query.by or query.sex or query.age:
            raise Unprocessable(
                f"release {release.id} (2019 census) holds totals only, without sex or age breakdowns"
            )
        await self._check_areas(release, query)
        for period in query.periods:
            if not period.first_month <= release.last_month <= period.last_month:
                raise Unprocessable(
                    f"release {release.id} is the census of 1 April 2019: ask for period 2019 or 2019-Q1"
                )
        layout = _layout(release)
        async with waiting():
            stored = await self.releases.rows(release.id, query.geography, query.areas, [release.last_month])
        counts = {area: layout.extract(decode_row(blob), "census_population") for area, _, blob in stored}
        computed = []
        for area in query.areas:
            urban, rural = (float(x) for x in counts.get(area, np.zeros(2)))
            total = urban + rural
            if indicator.code == "POP":
                observed = Value(total, total, None)
            else:
                observed = Value(urban / total * 100 if total else None, urban, total)
            for period in query.periods:
                computed.append(
                    Computed(
                        area, period.label, {}, observed.value, observed.numerator, observed.denominator, True
                    )
                )
        return release_result(release, indicator, tier, computed, CENSUS_METHOD, None)

    @staticmethod
    def _check_periods(release: Release, periods: Sequence[Period]) -> None:
        first, last = release.first_month + 1, release.last_month
        for period in periods:
            if period.first_month < first or period.last_month > last:
                raise Unprocessable(
                    f"period {period.label} is outside release {release.id}, which covers "
                    f"{month_label(first)} to {month_label(last)} (whole periods only)"
                )

    async def _urban(
        self, release: Release, query: ObservationQuery, tier: Tier, question: Question
    ) -> dict[tuple[str, int], FloatArray]:
        """Population of each area's urban communes (phường, thị trấn): a sum of commune values."""
        result: dict[tuple[str, int], FloatArray] = {}
        for code in query.areas:
            area = self.reference.get_area(query.geography, code)
            if area is None:
                continue
            communes = (
                [code]
                if area.level == "commune"
                else self.reference.descendant_codes(query.geography, code, "commune")
            )
            urban = [a.code for a in self.reference.get_areas(query.geography, communes).values() if a.urban]
            if tier is Tier.INTERNAL:
                cells = await self._true_cells(release, replace(query, areas=tuple(urban)), _needs(question))
            else:
                cells, _, _ = await self._published_cells(release, query, tier, question, urban)
            for period in query.periods:
                total = np.zeros(MEASURES["population"].shape)
                for commune in urban:
                    total += cells.value("population", commune, "stock", period)[0]
                result[(code, period.last_month)] = total
        return result


def _months_of(need: Need) -> set[int]:
    return need.stock_months | {m for p in need.flow_periods for m in p.months}


# What a query asks of the formulas: indicator, periods, the age ranges its cells slice and whether
# they slice by sex. The plan's pieces below are worked out once per question (and tier, release,
# kind of area), since requests ask the same few again and again, for area after area; what they
# return is shared, so it is read only.
Question = tuple[str, tuple[Period, ...], tuple[tuple[int, int | None], ...], bool]
MAX_PICKS: Final = 8192


@lru_cache(maxsize=2048)
def _needs(question: Question) -> dict[str, Need]:
    return needs(*question)


@lru_cache(maxsize=2048)
def _unit_months(question: Question, measure: str, grain: TimeGrain) -> tuple[int, ...]:
    """The months a measure's reads for the question end one of the grain's time units."""
    return tuple(m for m in _months_of(_needs(question)[measure]) if grain.ends_unit(m))


@lru_cache(maxsize=65536)
def _area_kind(release_id: str, note: str, geography: str, area: str) -> frozenset[str]:
    """The area grains whose atoms the release publishes for this area."""
    return frozenset(g for g, codes in _answerable(release_id, note, geography).items() if area in codes)


_picked: dict[tuple[Tier, str, str, str, Question, frozenset[str]], tuple[tuple[str, AtomSet], ...]] = {}


def _picks(
    tier: Tier,
    release_id: str,
    note: str,
    geography: str,
    question: Question,
    kind: frozenset[str],
    area: str,
) -> tuple[tuple[str, AtomSet], ...]:
    """Per measure, the atom set the plan picks for an area of this kind (`area` is one of them)."""
    key = (tier, release_id, note, geography, question, kind)  # the note: what the release publishes
    found = _picked.get(key)
    if found is None:
        answerable = _answerable(release_id, note, geography)
        found = tuple(
            (measure, choose(tier, need, [area], answerable)) for measure, need in _needs(question).items()
        )
        if len(_picked) >= MAX_PICKS:
            _picked.clear()
        _picked[key] = found
    return found


@lru_cache(maxsize=256)
def _axis_bands(name: str) -> dict[Axis, tuple[int, ...]]:
    atoms = ATOM_SETS[name]
    return dict(zip(atoms.measure.axes, atoms.bands, strict=True))


@lru_cache(maxsize=64)
def _bundles(release_id: str, names: tuple[str, ...]) -> dict[TimeGrain, Bundle]:
    """The release's storage layout, from the atom sets its note lists (in build order)."""
    return bundles([ATOM_SETS[n] for n in names])


def _check_sparsity(computed: Sequence[Computed]) -> None:
    counts = [c.value for c in computed if c.denominator is None and c.value]
    if len(counts) < SPARSE_MIN_CELLS:
        return
    tiny = sum(1 for v in counts if v < TINY)
    if tiny / len(counts) > SPARSE_SHARE:
        raise TooSparse(
            f"{tiny} of the table's {len(counts)} non-zero cells are under {TINY}: ask for fewer breakdowns "
            "or larger areas",
            tiny_cells=tiny,
            nonzero_cells=len(counts),
        )

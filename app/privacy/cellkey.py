"""Cell-key perturbation of a release's atoms, once, at build time (ABS/ONS cell-key method).

Each atom's cell key is the sum of its records' secret keys plus a per-measure salt, mod 2^31; the
p-table maps (true count, cell key) to the noise. The same records always give the same key, so a
cell has one published value whatever route reaches it; no randomness is drawn at request time.
Declared invariants are then benchmarked: +-1 steps on atoms of at least 20, in cell-key order,
until the atoms add up to the true province totals. Only published values leave this module.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from app.privacy.lattice import AreaGrain, AtomSet, TimeGrain
from app.privacy.ptable import PTable, default_ptable, perturbation, sensitive_ptable
from app.releases.builder import KEY_MODULUS, OFFSETS, AreaMapping, MonthBuild

Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

BENCHMARK_FLOOR: Final = 20  # only atoms at least this large take a +-1 step (DESIGN.md)
METHOD: Final = "cell-key perturbation of fixed atoms (ABS/ONS), invariants benchmarked"


def ptable_for(atoms: AtomSet) -> PTable:
    return sensitive_ptable() if atoms.measure.sensitive else default_ptable()


def measure_salt(secret: bytes, measure: str) -> int:
    """Per-measure salt of the cell keys: cells of different measures over the same records differ."""
    digest = hmac.digest(secret, f"cell-key-salt:{measure}".encode(), hashlib.sha256)
    return int.from_bytes(digest[:4], "big") & (KEY_MODULUS - 1)


def bin_axes(values: Int64Array, atoms: AtomSet) -> Int64Array:
    """Sum a (units, *measure axes) array into the atom set's bands (axis 0 is kept)."""
    for axis, edges in enumerate(atoms.bands, start=1):
        if len(edges) != values.shape[axis]:
            values = np.add.reduceat(values, np.asarray(edges), axis=axis)
    return values


def encode_values(values: Int64Array) -> bytes:
    return zlib.compress(np.ascontiguousarray(values, dtype="<i4").tobytes(), 1)


def decode_values(blob: bytes) -> NDArray[np.int32]:
    """A stored row as a read-only view (int32): a query reads a few slices, so nothing is copied."""
    return np.frombuffer(zlib.decompress(blob), dtype="<i4")


def decode_exact(blob: bytes | None) -> NDArray[np.uint8] | None:
    """The row's exact flags (1 per exact value), or None when none of its values is exact."""
    return None if blob is None else np.frombuffer(zlib.decompress(blob), dtype=np.uint8)


def perturb(
    atoms: AtomSet, true: Int64Array, keysums: Int64Array, salt: int
) -> tuple[Int64Array, Int64Array]:
    """Published atoms and their cell keys (as integers, for the benchmarking order)."""
    keys = (keysums + salt) % KEY_MODULUS
    noise = perturbation(ptable_for(atoms), true, keys.astype(np.float64) / KEY_MODULUS)
    return true + noise, keys


def benchmark(
    published: Int64Array, true: Int64Array, keys: Int64Array, group: Int64Array
) -> tuple[Int64Array, BoolArray]:
    """Nudge published atoms (flat) so that each group adds up to its true total.

    Each pass gives one +-1 step to as many atoms >= 20 of a group as it still lacks, taken in
    descending cell-key order (secret, so nobody can tell which atoms moved). Returns the atoms and,
    per group, whether it now adds up exactly (a group with too few large atoms cannot).
    """
    groups = int(group.max()) + 1 if group.size else 0
    result = published.copy()
    missing = np.bincount(group, weights=true, minlength=groups) - np.bincount(
        group, weights=result, minlength=groups
    )
    missing = np.rint(missing).astype(np.int64)
    order = np.lexsort((-keys, group))  # by group, then by cell key descending
    ordered_group = group[order]
    first_of_group = np.searchsorted(ordered_group, np.arange(groups))
    while np.any(missing != 0):
        need = missing[ordered_group]
        eligible = (result[order] >= BENCHMARK_FLOOR) & (need != 0)
        # Rank of each eligible atom among the eligible atoms of its group.
        running = np.cumsum(eligible)
        before_group = np.concatenate(([0], running))[first_of_group][ordered_group]
        rank = running - before_group - 1
        step = eligible & (rank < np.abs(need))
        if not step.any():
            break
        moved = order[step]
        signs = np.sign(need[step])
        result[moved] += signs
        missing -= np.bincount(ordered_group[step], weights=signs, minlength=groups).astype(np.int64)
    return result, missing == 0


class _RowSummer:
    """Sums rows into groups (row i into group target[i]; -1 dropped) by one sorted reduceat: far
    cheaper than np.add.at, and reused for every month and atom set."""

    def __init__(self, target: Int64Array, groups: int) -> None:
        used = np.flatnonzero(target >= 0)
        self.order = used[np.argsort(target[used], kind="stable")]
        sorted_target = target[self.order]
        self.bounds = np.flatnonzero(np.diff(np.concatenate(([-1], sorted_target))))
        self.present = sorted_target[self.bounds]
        self.groups = groups

    def __call__(self, rows: Int64Array) -> Int64Array:
        out = np.zeros((self.groups, *rows.shape[1:]), dtype=np.int64)
        if self.order.size:
            out[self.present] = np.add.reduceat(rows[self.order], self.bounds, axis=0)
        return out


@dataclass(frozen=True)
class _Grain:
    """How one area grain's units sit in the pieces and in each mapping's areas."""

    unit_of_piece: Int64Array  # -1 for pieces outside every unit
    n_units: int
    unit_province: Int64Array  # province index of each unit (for the invariants)
    unit_area: list[Int64Array]  # per mapping: the area each unit lies wholly in, else -1
    answerable: list[BoolArray]  # per mapping: areas that are unions of whole units
    to_units: _RowSummer  # pieces -> units
    to_areas: list[_RowSummer]  # per mapping: units -> areas


def _grain(
    unit_of_piece: Int64Array,
    n_units: int,
    province_of_piece: Int64Array,
    targets: Sequence[Int64Array],
    n_areas_of: Sequence[int],
) -> _Grain:
    unit_province = np.full(n_units, -1, dtype=np.int64)
    inside = unit_of_piece >= 0
    unit_province[unit_of_piece[inside]] = province_of_piece[inside]
    unit_area, answerable = [], []
    for target, n_areas in zip(targets, n_areas_of, strict=True):
        area = np.full(n_units, -2, dtype=np.int64)  # -2: not seen yet
        spoiled = np.zeros(n_areas, dtype=bool)
        for piece in np.flatnonzero(inside):
            unit, here = unit_of_piece[piece], target[piece]
            if area[unit] == -2:
                area[unit] = here
            elif area[unit] != here:
                for a in (area[unit], here):
                    if a >= 0:
                        spoiled[a] = True
                area[unit] = -1
        area[area == -2] = -1
        whole = np.zeros(n_areas, dtype=bool)
        whole[area[area >= 0]] = True
        unit_area.append(area)
        answerable.append(whole & ~spoiled)
    to_areas = [_RowSummer(area, len(whole)) for area, whole in zip(unit_area, answerable, strict=True)]
    return _Grain(
        unit_of_piece,
        n_units,
        unit_province,
        unit_area,
        answerable,
        _RowSummer(unit_of_piece, n_units),
        to_areas,
    )


class _Accumulator:
    """True counts and key sums of one atom set over the months of the current time unit."""

    def __init__(self) -> None:
        self.counts: Int64Array | None = None
        self.keys: Int64Array | None = None

    def add(self, counts: Int64Array, keys: Int64Array, replace: bool) -> None:
        if self.counts is None or self.keys is None or replace:
            self.counts, self.keys = counts.copy(), keys.copy()
        else:
            self.counts += counts
            self.keys = (self.keys + keys) % KEY_MODULUS

    def take(self) -> tuple[Int64Array, Int64Array]:
        assert self.counts is not None
        assert self.keys is not None
        counts, keys = self.counts, self.keys
        self.counts = self.keys = None
        return counts, keys


@dataclass(frozen=True)
class Bundle:
    """The atom sets of one time grain, stored together: one row per area and time unit."""

    grain: TimeGrain
    atom_sets: tuple[AtomSet, ...]

    @cached_property
    def size(self) -> int:
        return sum(a.size for a in self.atom_sets)

    @cached_property
    def offsets(self) -> dict[str, int]:
        starts = np.cumsum([0, *(a.size for a in self.atom_sets)])
        return {a.name: int(start) for a, start in zip(self.atom_sets, starts, strict=False)}

    def offset(self, name: str) -> int:
        return self.offsets[name]


def bundles(atom_sets: Sequence[AtomSet]) -> dict[TimeGrain, Bundle]:
    return {
        grain: Bundle(grain, tuple(a for a in atom_sets if a.time is grain))
        for grain in TimeGrain
        if any(a.time is grain for a in atom_sets)
    }


@dataclass
class _Published:
    """One atom set's published values for one time unit, by mapping: (areas, size) arrays."""

    values: list[Int64Array]
    answerable: list[BoolArray]
    exact: list[BoolArray | None]  # (areas, size) where exact cells exist, per mapping


class AtomPublisher:
    """Turns the builder's months into published atom rows for every area that can be answered."""

    def __init__(
        self,
        release_id: str,
        atom_sets: Sequence[AtomSet],
        mappings: Sequence[AreaMapping],
        piece_targets: Sequence[Int64Array],
        register_geography: str,
        first_month: int,
        secret: bytes,
    ) -> None:
        self.release_id = release_id
        self.atom_sets = list(atom_sets)
        self.bundles = bundles(self.atom_sets)
        self.mappings = list(mappings)
        self.first_month = first_month
        self.salts = {a.measure.name: measure_salt(secret, a.measure.name) for a in self.atom_sets}
        self._accumulators: dict[str, _Accumulator] = {}

        def register_level(level: str) -> int:
            for index, m in enumerate(self.mappings):
                if m.geography == register_geography and m.level == level:
                    return index
            raise ValueError(f"no {level} mapping of {register_geography}")

        n_pieces = len(piece_targets[0]) if piece_targets else 0
        sizes = [len(m.codes) for m in self.mappings]
        province = piece_targets[register_level("province")]
        self.n_provinces = len(self.mappings[register_level("province")].codes)
        self._grains: dict[AreaGrain, _Grain] = {
            AreaGrain.COMMUNE: _grain(
                np.arange(n_pieces, dtype=np.int64), n_pieces, province, piece_targets, sizes
            ),
            AreaGrain.PROVINCE: _grain(province, self.n_provinces, province, piece_targets, sizes),
        }
        if any(m.geography == register_geography and m.level == "district" for m in self.mappings):
            district_index = register_level("district")
            self._grains[AreaGrain.DISTRICT] = _grain(
                piece_targets[district_index],
                len(self.mappings[district_index].codes),
                province,
                piece_targets,
                sizes,
            )
        # Areas that are whole unions of the register's provinces: their invariant cells are exact.
        provinces = self._grains[AreaGrain.PROVINCE]
        self._province_members = [
            [np.flatnonzero(unit_area == a) if whole else None for a, whole in enumerate(answerable)]
            for unit_area, answerable in zip(provinces.unit_area, provinces.answerable, strict=True)
        ]

    def answerable(self) -> dict[str, dict[str, list[str]]]:
        """Per area grain and geography, the areas that are unions of whole units (for the release note)."""
        result: dict[str, dict[str, list[str]]] = {}
        for grain, geometry in self._grains.items():
            per_geography = result.setdefault(grain.value, {})
            for mapping, whole in zip(self.mappings, geometry.answerable, strict=True):
                per_geography.setdefault(mapping.geography, []).extend(
                    mapping.codes[i] for i in np.flatnonzero(whole)
                )
        return result

    def add(self, build: MonthBuild) -> Iterator[dict[str, Any]]:
        """Rows of `published_cell` for the time units that end with this month."""
        for grain, bundle in self.bundles.items():
            if not grain.ends_unit(build.month):
                for atoms in bundle.atom_sets:
                    if self._in_release(atoms, build.month):
                        self._accumulate(atoms, build)
                continue
            published = {
                atoms.name: self._finish(atoms, build)
                for atoms in bundle.atom_sets
                if self._in_release(atoms, build.month)
            }
            yield from self._rows(bundle, build.month, published)

    def _in_release(self, atoms: AtomSet, month: int) -> bool:
        """Stocks from the snapshot month on; flows only over time units wholly after the snapshot."""
        if atoms.is_stock:
            return month >= self.first_month
        unit_start = month - (month % 12) % atoms.time.months
        return unit_start > self.first_month

    def _accumulate(self, atoms: AtomSet, build: MonthBuild) -> None:
        """Add this month's true counts and key sums of the atom set's units (per mapping for flows
        counted on every area)."""
        start, width = OFFSETS[atoms.measure.name], atoms.measure.size
        sources: list[tuple[str, Int64Array, Int64Array, _Grain | None]]
        if atoms.area is AreaGrain.EVERY_AREA:
            sources = [(f"{atoms.name}#{i}", c.counts, c.keysums, None) for i, c in enumerate(build.areas)]
        else:
            sources = [(atoms.name, build.piece_counts, build.piece_keysums, self._grains[atoms.area])]
        for key, counts, keysums, geometry in sources:
            shape = (counts.shape[0], *atoms.measure.shape)
            true = counts[:, start : start + width].reshape(shape)
            keys = keysums[:, start : start + width].reshape(shape)
            if geometry is not None:
                true, keys = _to_units(true, keys, geometry)
            accumulator = self._accumulators.setdefault(key, _Accumulator())
            accumulator.add(bin_axes(true, atoms), bin_axes(keys, atoms) % KEY_MODULUS, atoms.is_stock)

    def _finish(self, atoms: AtomSet, build: MonthBuild) -> _Published:
        self._accumulate(atoms, build)
        salt = self.salts[atoms.measure.name]
        if atoms.area is AreaGrain.EVERY_AREA:
            every = _Published([], [], [None] * len(self.mappings))
            for index, mapping in enumerate(self.mappings):
                area_true, area_keys = self._accumulators[f"{atoms.name}#{index}"].take()
                area_values = perturb(atoms, area_true, area_keys, salt)[0]
                every.values.append(area_values.reshape(len(mapping.codes), atoms.size))
                every.answerable.append(np.ones(len(mapping.codes), dtype=bool))
            return every

        geometry = self._grains[atoms.area]
        true, keysums = self._accumulators[atoms.name].take()
        published, cell_keys = perturb(atoms, true, keysums, salt)
        exact_by_province: BoolArray | None = None
        if atoms.invariant is not None:
            group, kept = _invariant_groups(atoms, geometry.unit_province)
            flat, exact_groups = benchmark(
                published.reshape(-1), true.reshape(-1), cell_keys.reshape(-1), group
            )
            published = flat.reshape(published.shape)
            # Each province cell is one invariant cell when the invariant keeps every axis that has bands.
            if all(k in kept or len(edges) == 1 for k, edges in enumerate(atoms.bands)):
                exact_by_province = exact_groups.reshape(self.n_provinces, atoms.size)
        result = _Published([], [], [])
        units = published.reshape(geometry.n_units, atoms.size)
        for index, mapping in enumerate(self.mappings):
            result.values.append(geometry.to_areas[index](units))
            result.answerable.append(geometry.answerable[index])
            exact = None
            if exact_by_province is not None:
                exact = np.zeros((len(mapping.codes), atoms.size), dtype=bool)
                for a, members in enumerate(self._province_members[index]):
                    if members is not None and members.size:
                        exact[a] = exact_by_province[members].all(axis=0)
            result.exact.append(exact)
        return result

    def _rows(self, bundle: Bundle, month: int, published: dict[str, _Published]) -> Iterator[dict[str, Any]]:
        """One row per area holding every atom set of the bundle (zeros where a set has nothing)."""
        for index, mapping in enumerate(self.mappings):
            n_areas = len(mapping.codes)
            values = np.zeros((n_areas, bundle.size), dtype=np.int64)
            exact = np.zeros((n_areas, bundle.size), dtype=bool)
            has_exact = np.zeros(n_areas, dtype=bool)
            for atoms in bundle.atom_sets:
                found = published.get(atoms.name)
                if found is None:
                    continue
                start = bundle.offset(atoms.name)
                cells = slice(start, start + atoms.size)
                values[:, cells] = found.values[index] * found.answerable[index][:, None]
                set_exact = found.exact[index]
                if set_exact is not None:
                    exact[:, cells] = set_exact
                    has_exact |= set_exact.any(axis=1)
            for a in np.flatnonzero(values.any(axis=1) | has_exact):
                yield {
                    "release_id": self.release_id,
                    "geography": mapping.geography,
                    "area_code": mapping.codes[a],
                    "time_unit": bundle.grain.value,
                    "period": month,
                    "values": encode_values(values[a]),
                    "exact": zlib.compress(exact[a].astype(np.uint8).tobytes(), 1) if has_exact[a] else None,
                }


def _to_units(counts: Int64Array, keys: Int64Array, geometry: _Grain) -> tuple[Int64Array, Int64Array]:
    """Sum piece rows into the grain's units (pieces are the units of the commune grain)."""
    if geometry.n_units == len(geometry.unit_of_piece) and np.array_equal(
        geometry.unit_of_piece, np.arange(geometry.n_units)
    ):
        return counts, keys
    return geometry.to_units(counts), geometry.to_units(keys) % KEY_MODULUS


def _invariant_groups(atoms: AtomSet, unit_province: Int64Array) -> tuple[Int64Array, tuple[int, ...]]:
    """Group id of every atom (flat, units first): its province and its bands on the kept axes."""
    assert atoms.invariant is not None
    kept = tuple(atoms.measure.axes.index(axis) for axis in atoms.invariant.keeps)
    grid = (
        np.indices(atoms.shape).reshape(len(atoms.shape), -1)
        if atoms.shape
        else np.zeros((0, 1), dtype=np.int64)
    )
    kept_shape = tuple(atoms.shape[k] for k in kept)
    cell = (
        np.ravel_multi_index(tuple(grid[k] for k in kept), kept_shape)
        if kept
        else np.zeros(grid.shape[1], dtype=np.int64)
    )
    per_province = int(np.prod(kept_shape)) if kept else 1
    n_units = len(unit_province)
    province = np.repeat(np.maximum(unit_province, 0), atoms.size)
    group = province * per_province + np.tile(cell, n_units)
    return group.astype(np.int64), kept

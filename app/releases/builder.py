"""The release builder: validated register records -> base counts by area x month x measure axes.

The register is replayed as a timeline per person (snapshot, then events in date order); each stretch
between two events is a *segment* with the person's commune, marital status and contraceptive method.
A stock at the end of month m counts the segments that cover m; a flow counts the events of month m.
Every count comes with the sum of its records' secret keys (mod 2^31), which the cell-key method of
disclosure control needs. Everything is vectorised: numpy for counting, polars for the timeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from app.cube import (
    AGES,
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
    Measure,
)
from connectors.canonical import EventType

KEY_MODULUS: Final = 2**31
Int64Array = NDArray[np.int64]


def record_keys(secret: bytes, ids: Sequence[str]) -> Int64Array:
    """Permanent secret record keys: HMAC-SHA256(secret, id) cut to 31 bits (DESIGN.md, disclosure control).

    HMAC's two padded key states are computed once and copied per id (RFC 2104): the same digest as
    `hmac.digest` at half the cost, which matters for millions of persons.
    """
    block = hashlib.sha256().block_size
    key = hashlib.sha256(secret).digest() if len(secret) > block else secret
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def one(record_id: str) -> int:
        first = inner.copy()
        first.update(record_id.encode())
        second = outer.copy()
        second.update(first.digest())
        return int.from_bytes(second.digest()[:4], "big") & 0x7FFFFFFF

    return np.fromiter((one(i) for i in ids), dtype=np.int64, count=len(ids))


@dataclass(frozen=True)
class RegisterFrames:
    """The canonical register as typed frames (see connectors.canonical)."""

    households: pl.DataFrame
    persons: pl.DataFrame
    events: pl.DataFrame
    snapshot_month: int  # month index of the snapshot: stocks are as at the end of this month
    last_month: int  # month index of the last month the events cover


@dataclass(frozen=True)
class AreaMapping:
    """How the register's communes roll up to the areas of one level of one geography version.

    `target` maps each register commune to a target area index; where a commune was split over
    several targets (re-expression through a crosswalk), `split_targets`/`split_shares` list them and
    each person goes to one of them by their record key, in proportion to the shares. Every mapping
    with a split for a commune uses the same shares, so a person's part is the same at every level.
    """

    geography: str
    level: str  # province | district | commune
    codes: list[str]
    target: NDArray[np.int64]  # per register commune; -1 where the commune is split
    split_targets: dict[int, NDArray[np.int64]] = field(default_factory=dict)
    split_shares: dict[int, NDArray[np.float64]] = field(default_factory=dict)


@dataclass(frozen=True)
class MonthCube:
    """All base measures of one month for every area of one mapping, as one vector per area.

    The vector is the concatenation of the measures in `LAYOUT` order; `keysums` holds, beside each
    count, the sum of its records' keys mod 2^31 (the input of the cell-key method).
    """

    mapping: AreaMapping
    month: int
    counts: Int64Array  # (areas, LAYOUT_SIZE)
    keysums: Int64Array


@dataclass(frozen=True)
class MonthBuild:
    """One month of the build: every measure by piece (the finest areas), and by every mapping's areas.

    Pieces carry no migration: a move counts only where it crosses an area's boundary, so migrants
    are not additive over areas and exist only per mapping.
    """

    month: int
    piece_counts: Int64Array  # (pieces, LAYOUT_SIZE)
    piece_keysums: Int64Array
    areas: list[MonthCube]


LAYOUT: Final[tuple[Measure, ...]] = (
    POPULATION,
    HOUSEHOLDS,
    MARRIED_WOMEN,
    CONTRACEPTIVE_USERS,
    BIRTHS,
    DEATHS,
    IN_MIGRANTS,
    OUT_MIGRANTS,
    MARRIAGES,
    DIVORCES,
)
OFFSETS: Final = dict(
    zip((m.name for m in LAYOUT), np.cumsum([0] + [m.size for m in LAYOUT[:-1]]).tolist(), strict=True)
)
LAYOUT_SIZE: Final = sum(m.size for m in LAYOUT)


# Order of events on the same day: a birth opens the life it may close; a move-out closes the
# stay a move-in on the same day opens elsewhere.
_EVENT_RANK: Final = {
    EventType.BIRTH: 0,
    EventType.MARRIAGE: 1,
    EventType.DIVORCE: 1,
    EventType.CONTRACEPTION_CHANGE: 2,
    EventType.DEATH: 3,
    EventType.MOVE_OUT: 3,
    EventType.MOVE_IN: 4,
}
_NO_METHOD: Final = -1


class ReleaseBuilder:
    def __init__(self, register: RegisterFrames, commune_codes: list[str], secret: bytes) -> None:
        self.register = register
        self.commune_index = {code: i for i, code in enumerate(commune_codes)}
        self.first_month = register.snapshot_month
        self.months = register.last_month - register.snapshot_month + 1
        self.secret = secret
        self._person_table = self._persons()
        self._segments = self._timeline()

    # ---- inputs -------------------------------------------------------------------------------

    def _commune(self, codes: pl.Series) -> Int64Array:
        """Register commune index per code; -1 for empty or unknown codes (outside the register)."""
        indexed = codes.fill_null("").replace_strict(self.commune_index, default=-1, return_dtype=pl.Int64)
        result: Int64Array = indexed.to_numpy()
        return result

    def _persons(self) -> pl.DataFrame:
        """Every person the register knows (snapshot, newborns, arrivals): sex, birth month, key."""
        snapshot = self.register.persons.select("person_id", "sex", "birth_date")
        newcomers = self.register.events.filter(
            pl.col("event_type").is_in([EventType.BIRTH.value, EventType.MOVE_IN.value])
            & pl.col("sex").is_not_null()
        ).select("person_id", "sex", "birth_date")
        people = pl.concat([snapshot, newcomers]).unique("person_id", keep="first", maintain_order=True)
        keys = record_keys(self.secret, people["person_id"].to_list())
        return people.with_columns(
            pl.Series("key", keys),
            (
                pl.col("birth_date").dt.year().cast(pl.Int64) * 12
                + pl.col("birth_date").dt.month().cast(pl.Int64)
                - 1
            ).alias("birth_month"),
            pl.int_range(pl.len(), dtype=pl.Int64).alias("pidx"),
        )

    def _event_frame(self) -> pl.DataFrame:
        events = self.register.events
        month = (
            pl.col("event_date").dt.year().cast(pl.Int64) * 12
            + pl.col("event_date").dt.month().cast(pl.Int64)
            - 1
        ).alias("month")
        rank = pl.col("event_type").replace_strict(
            {k.value: v for k, v in _EVENT_RANK.items()}, default=9, return_dtype=pl.Int64
        )
        return events.with_columns(month, rank.alias("rank"))

    # ---- the timeline ---------------------------------------------------------------------------

    def _timeline(self) -> pl.DataFrame:
        """Segments (person, commune, married, method, start month, end month) of the register."""
        persons = self.register.persons
        method_codes = {m: i for i, m in enumerate(METHODS)}
        snapshot = persons.select(
            "person_id",
            pl.lit(self.first_month, dtype=pl.Int64).alias("month"),
            pl.lit(-1, dtype=pl.Int64).alias("rank"),
            pl.lit(1, dtype=pl.Int8).alias("present"),
            pl.col("area_code"),
            (pl.col("marital_status") == "married").cast(pl.Int8).alias("married"),
            pl.col("contraceptive_method")
            .replace_strict(method_codes, default=_NO_METHOD, return_dtype=pl.Int64)
            .fill_null(_NO_METHOD)
            .alias("method"),
        )
        events = self._event_frame()
        kinds = pl.col("event_type")

        def kinds_are(types: list[EventType]) -> pl.Expr:
            return kinds.is_in([t.value for t in types])

        # A newcomer's first row sets every state, so one forward fill over the sorted timeline never
        # carries a state from one person to the next.
        newcomer = kinds_are([EventType.BIRTH, EventType.MOVE_IN]) & pl.col("sex").is_not_null()
        kinds = pl.col("event_type")
        changes = events.select(
            "person_id",
            "month",
            "rank",
            pl.when(kinds.is_in([EventType.BIRTH.value, EventType.MOVE_IN.value]))
            .then(pl.lit(1, dtype=pl.Int8))
            .when(kinds.is_in([EventType.DEATH.value, EventType.MOVE_OUT.value]))
            .then(pl.lit(0, dtype=pl.Int8))
            .otherwise(None)
            .alias("present"),
            pl.when(kinds.is_in([EventType.BIRTH.value, EventType.MOVE_IN.value]))
            .then(pl.col("area_code"))
            .otherwise(None)
            .alias("area_code"),
            pl.when(kinds == EventType.MARRIAGE.value)
            .then(pl.lit(1, dtype=pl.Int8))
            .when(kinds == EventType.DIVORCE.value)
            .then(pl.lit(0, dtype=pl.Int8))
            .when(newcomer)
            .then(pl.lit(0, dtype=pl.Int8))
            .otherwise(None)
            .alias("married"),
            pl.when(kinds == EventType.CONTRACEPTION_CHANGE.value)
            .then(
                pl.col("contraceptive_method")
                .fill_null("")
                .replace_strict(method_codes, default=_NO_METHOD, return_dtype=pl.Int64)
            )
            .when(newcomer)
            .then(pl.lit(_NO_METHOD, dtype=pl.Int64))
            .otherwise(None)
            .alias("method"),
        )
        # Spouses change status too: one marriage or divorce event per couple.
        spouses = events.filter(
            kinds.is_in([EventType.MARRIAGE.value, EventType.DIVORCE.value])
            & pl.col("spouse_id").is_not_null()
        ).select(
            pl.col("spouse_id").alias("person_id"),
            "month",
            "rank",
            pl.lit(None, dtype=pl.Int8).alias("present"),
            pl.lit(None, dtype=pl.String).alias("area_code"),
            (kinds == EventType.MARRIAGE.value).cast(pl.Int8).alias("married"),
            pl.lit(None, dtype=pl.Int64).alias("method"),
        )
        index = self._person_table.select("person_id", "pidx")
        end_of_data = self.first_month + self.months
        timeline = (
            pl.concat([snapshot, changes, spouses])
            .join(index, on="person_id", how="inner")
            .drop("person_id")
            .sort("pidx", "month", "rank", maintain_order=True)
            .with_columns(
                pl.col("present", "area_code", "married", "method").forward_fill(),
                pl.when(pl.col("pidx").shift(-1) == pl.col("pidx"))
                .then(pl.col("month").shift(-1))
                .otherwise(end_of_data)
                .alias("end"),
            )
            .rename({"month": "start"})
            .filter((pl.col("present") == 1) & (pl.col("end") > pl.col("start")))
        )
        return timeline.select("pidx", "area_code", "married", "method", "start", "end")

    # ---- pieces: the finest areas every mapping is a union of --------------------------------------

    def _plan_pieces(self, mappings: list[AreaMapping]) -> None:
        """A piece is a register commune, or the part of a split commune that went to one new unit."""
        self.mappings = mappings
        n = len(self.commune_index)
        shares_of: dict[int, NDArray[np.float64]] = {}
        for mapping in mappings:
            for split, shares in mapping.split_shares.items():
                shares_of.setdefault(split, shares)
        parts = np.ones(n, dtype=np.int64)
        for split, shares in shares_of.items():
            parts[split] = len(shares)
        # Pieces are numbered commune by commune: the first piece of commune c is first_piece[c].
        self._first_piece = np.concatenate(([0], np.cumsum(parts)[:-1]))
        self.n_pieces = int(parts.sum())
        widest = int(parts.max()) if n else 1
        self._bounds = np.full((n, widest), 2.0)  # cumulative share bounds; 2.0 never reached
        for split, shares in shares_of.items():
            self._bounds[split, : len(shares)] = np.cumsum(shares) / shares.sum()
        commune = np.repeat(np.arange(n, dtype=np.int64), parts)
        part = np.arange(self.n_pieces, dtype=np.int64) - self._first_piece[commune]
        self._piece_target: list[Int64Array] = []
        for mapping in mappings:
            target = mapping.target[commune].copy()
            for c, targets in mapping.split_targets.items():
                rows = np.flatnonzero(commune == c)
                target[rows] = targets[part[rows]]
            self._piece_target.append(target)

    def _piece(self, commune: Int64Array, key: Int64Array) -> Int64Array:
        """Piece index per record: its commune, and for a split commune the part its key falls in."""
        inside = commune >= 0
        piece = np.full(commune.shape, -1, dtype=np.int64)
        position = key[inside].astype(np.float64) / KEY_MODULUS
        bounds = self._bounds[commune[inside]]
        part = (bounds[:, :-1] <= position[:, None]).sum(axis=1) if bounds.shape[1] > 1 else 0
        piece[inside] = self._first_piece[commune[inside]] + part
        return piece

    def _nesting(self) -> list[tuple[int, Int64Array] | None]:
        """Per mapping, an earlier mapping whose areas each lie wholly inside one of its areas, with that
        area per earlier area: provinces are then summed from a few dozen districts, not every piece."""
        sources: list[tuple[int, Int64Array] | None] = []
        for index, target in enumerate(self._piece_target):
            found: tuple[int, Int64Array] | None = None
            for earlier in range(index):
                inner = self._piece_target[earlier]
                if len(self.mappings[earlier].codes) >= len(target) or not np.array_equal(
                    inner >= 0, target >= 0
                ):
                    continue
                outer = np.full(len(self.mappings[earlier].codes), -1, dtype=np.int64)
                inside = inner >= 0
                outer[inner[inside]] = target[inside]
                if np.array_equal(outer[inner[inside]], target[inside]) and (
                    found is None or len(outer) < len(found[1])
                ):
                    found = (earlier, outer)
            sources.append(found)
        return sources

    def _to_mapping(
        self, index: int, per_piece: Int64Array, keys: Int64Array
    ) -> tuple[Int64Array, Int64Array]:
        """Sum piece rows into the mapping's areas (key sums stay mod 2^31)."""
        return _sum_rows(self._piece_target[index], len(self.mappings[index].codes), per_piece, keys)

    # ---- counting -------------------------------------------------------------------------------

    def piece_targets(self) -> list[Int64Array]:
        """Per mapping of the last `build`, the area index of each piece (-1 outside the mapping)."""
        return self._piece_target

    def build(self, mappings: list[AreaMapping]) -> Iterator[MonthBuild]:
        """Every base measure, month by month, for every mapping (a level of a geography version).

        The pieces are planned at once (so `piece_targets` is ready); the months come as iterated."""
        self._plan_pieces(mappings)
        return self._months(mappings)

    def _months(self, mappings: list[AreaMapping]) -> Iterator[MonthBuild]:
        n_pieces = self.n_pieces
        persons = self._person_table
        seg = self._segments
        pidx = seg["pidx"].to_numpy()
        key = persons["key"].to_numpy()[pidx]
        piece = self._piece(self._commune(seg["area_code"]), key)
        inside = piece >= 0
        stock = _StockInputs(
            piece=piece[inside],
            sex=persons["sex"].to_numpy().astype(np.int64)[pidx][inside] - 1,
            birth_month=persons["birth_month"].to_numpy()[pidx][inside],
            key=key[inside],
            start=seg["start"].to_numpy()[inside],
            end=seg["end"].to_numpy()[inside],
            married=seg["married"].to_numpy().astype(bool)[inside],
            method=seg["method"].to_numpy()[inside],
        )
        flows = _FlowInputs.of(self, n_pieces)
        households = self._household_stock(n_pieces)
        stocks = _Stocks(stock, n_pieces)
        nesting = self._nesting()
        for offset in range(self.months):
            month = self.first_month + offset
            counts = np.zeros((n_pieces, LAYOUT_SIZE), dtype=np.int64)
            sums = np.zeros_like(counts)
            stocks.advance(month)
            stocks.place(counts, sums)
            _place(counts, sums, HOUSEHOLDS, households[0][:, offset, None], households[1][:, offset, None])
            flows.place(month, counts, sums)
            cubes = []
            base: list[tuple[Int64Array, Int64Array]] = []  # before migration, which is not additive
            for index, mapping in enumerate(mappings):
                source = nesting[index]
                if source is None:
                    area_counts, area_sums = self._to_mapping(index, counts, sums)
                else:
                    inner_counts, inner_sums = base[source[0]]
                    area_counts, area_sums = _sum_rows(
                        source[1], len(mapping.codes), inner_counts, inner_sums
                    )
                base.append((area_counts, area_sums))
                # Migrants go into a copy: the pieces and `base` feed the coarser mappings.
                area_counts, area_sums = area_counts.copy(), area_sums.copy()
                migration = flows.migration(index, month, len(mapping.codes))
                for measure, (values, keysums) in migration.items():
                    _place(area_counts, area_sums, measure, values, keysums)
                cubes.append(MonthCube(mapping, month, area_counts, area_sums))
            yield MonthBuild(month, counts, sums, cubes)

    def _household_stock(self, n_pieces: int) -> tuple[Int64Array, Int64Array]:
        """Households at month end by piece: the snapshot's, plus those formed, less those dissolved."""
        households = self.register.households
        keys = record_keys(self.secret, households["household_id"].to_list())
        piece = self._piece(self._commune(households["area_code"]), keys)
        events = self._event_frame().filter(
            pl.col("event_type").is_in(
                [EventType.HOUSEHOLD_FORMED.value, EventType.HOUSEHOLD_DISSOLVED.value]
            )
        )
        event_keys = record_keys(self.secret, events["household_id"].fill_null("").to_list())
        event_piece = self._piece(self._commune(events["area_code"]), event_keys)
        sign = np.where(events["event_type"].to_numpy() == EventType.HOUSEHOLD_FORMED.value, 1, -1)
        offset = events["month"].to_numpy() - self.first_month
        delta = np.zeros((n_pieces, self.months), dtype=np.int64)
        key_delta = np.zeros((n_pieces, self.months), dtype=np.int64)
        ok = piece >= 0
        np.add.at(delta[:, 0], piece[ok], 1)
        np.add.at(key_delta[:, 0], piece[ok], keys[ok])
        ok = (event_piece >= 0) & (offset > 0) & (offset < self.months)
        np.add.at(delta, (event_piece[ok], offset[ok]), sign[ok])
        np.add.at(key_delta, (event_piece[ok], offset[ok]), sign[ok] * event_keys[ok])
        return np.cumsum(delta, axis=1), np.cumsum(key_delta, axis=1) % KEY_MODULUS


@dataclass(frozen=True)
class _StockInputs:
    piece: Int64Array
    sex: Int64Array
    birth_month: Int64Array
    key: Int64Array
    start: Int64Array
    end: Int64Array
    married: NDArray[np.bool_]
    method: Int64Array


class _Stocks:
    """Month-end stocks kept current month by month: entries and exits of segments, and birthdays.

    State is held by piece x (sex) x calendar month of birth x age, so that a month's birthdays are
    one shift along the age axis; each segment is touched only when it starts and when it ends.
    """

    def __init__(self, s: _StockInputs, n_pieces: int) -> None:
        self.s = s
        self.by_start = np.argsort(s.start, kind="stable")
        self.starts = s.start[self.by_start]
        self.by_end = np.argsort(s.end, kind="stable")
        self.ends = s.end[self.by_end]
        self.birth_moy = s.birth_month % 12
        self.wife = (s.sex == 1) & s.married
        self.user = self.wife & (s.method >= 0)
        self.population = np.zeros((n_pieces, 2, 12, AGES), dtype=np.int64)
        self.wives = np.zeros((n_pieces, 12, AGES), dtype=np.int64)
        self.users = np.zeros((n_pieces, len(METHODS), 12, AGES), dtype=np.int64)
        self.keys = {name: np.zeros_like(state) for name, state in self._states().items()}
        self.started = False

    def _states(self) -> dict[str, Int64Array]:
        return {"population": self.population, "wives": self.wives, "users": self.users}

    def advance(self, month: int) -> None:
        if self.started:
            for name, state in self._states().items():
                _birthday(state, self.keys[name], month % 12)
        self.started = True
        low, high = np.searchsorted(self.starts, [month, month + 1])
        self._apply(self.by_start[low:high], month, +1)
        low, high = np.searchsorted(self.ends, [month, month + 1])
        self._apply(self.by_end[low:high], month, -1)

    def _apply(self, rows: Int64Array, month: int, sign: int) -> None:
        s = self.s
        age = np.clip((month - s.birth_month[rows]) // 12, 0, MAX_AGE)
        moy, piece, key = self.birth_moy[rows], s.piece[rows], s.key[rows]
        _add(self.population, self.keys["population"], (piece, s.sex[rows], moy, age), key, sign)
        wife = self.wife[rows]
        _add(self.wives, self.keys["wives"], (piece[wife], moy[wife], age[wife]), key[wife], sign)
        user = self.user[rows]
        method = s.method[rows]
        _add(
            self.users, self.keys["users"], (piece[user], method[user], moy[user], age[user]), key[user], sign
        )

    def place(self, counts: Int64Array, sums: Int64Array) -> None:
        """Write this month's stocks (married women and users: ages 15-49 only) into the piece rows."""
        n = counts.shape[0]
        fertile = _ages_mask(15, 49)
        population = self.population.sum(axis=2).reshape(n, -1)
        population_keys = self.keys["population"].sum(axis=2).reshape(n, -1) % KEY_MODULUS
        _place(counts, sums, POPULATION, population, population_keys)
        wives = self.wives.sum(axis=1) * fertile
        wives_keys = self.keys["wives"].sum(axis=1) % KEY_MODULUS * fertile
        _place(counts, sums, MARRIED_WOMEN, wives, wives_keys)
        users = (self.users.sum(axis=2) * fertile).reshape(n, -1)
        users_keys = (self.keys["users"].sum(axis=2) % KEY_MODULUS * fertile).reshape(n, -1)
        _place(counts, sums, CONTRACEPTIVE_USERS, users, users_keys)


def _sum_rows(
    target: Int64Array, n_areas: int, rows: Int64Array, keys: Int64Array
) -> tuple[Int64Array, Int64Array]:
    """Sum rows into areas (row i into area target[i]; -1 dropped); key sums stay mod 2^31."""
    if n_areas == len(target) and bool((target == np.arange(n_areas)).all()):
        return rows, keys  # one row per area, in order: nothing to add up
    used = np.flatnonzero(target >= 0)
    ordered = bool((np.diff(target[used]) >= 0).all())
    order = used if ordered else used[np.argsort(target[used], kind="stable")]
    counts = np.zeros((n_areas, rows.shape[1]), dtype=np.int64)
    sums = np.zeros_like(counts)
    if order.size:
        bounds = np.flatnonzero(np.diff(np.concatenate(([-1], target[order]))))
        areas = target[order][bounds]
        # Rows are numbered commune by commune, so most mappings need no reordering copy.
        picked, picked_keys = (
            (rows, keys) if ordered and order.size == len(target) else (rows[order], keys[order])
        )
        counts[areas] = np.add.reduceat(picked, bounds, axis=0)
        sums[areas] = np.add.reduceat(picked_keys, bounds, axis=0) % KEY_MODULUS
    return counts, sums


def _ages_mask(low: int, high: int) -> Int64Array:
    mask = np.zeros(AGES, dtype=np.int64)
    mask[low : high + 1] = 1
    return mask


def _birthday(state: Int64Array, keys: Int64Array, moy: int) -> None:
    """Everyone born in calendar month `moy` is a year older at the end of this month (100+ stays)."""
    for array, modulus in ((state, 0), (keys, KEY_MODULUS)):
        view = array[..., moy, :]
        top = view[..., -1] + view[..., -2]
        view[..., 1:-1] = view[..., :-2].copy()
        view[..., -1] = top % modulus if modulus else top
        view[..., 0] = 0


def _add(
    state: Int64Array, keys: Int64Array, index: tuple[Int64Array, ...], key: Int64Array, sign: int
) -> None:
    """Add (sign +1) or remove (-1) records from a state and its key sums."""
    if index[0].size == 0:
        return
    flat = np.ravel_multi_index(index, state.shape)
    state_flat, keys_flat = state.reshape(-1), keys.reshape(-1)
    if flat.size > state.size // 8:  # the snapshot: a dense pass is cheaper
        state_flat += sign * np.bincount(flat, minlength=state.size)
        sums = np.bincount(flat, weights=key.astype(np.float64), minlength=state.size).astype(np.int64)
        keys_flat[:] = (keys_flat + sign * sums) % KEY_MODULUS
    else:  # a month's changes touch few cells
        np.add.at(state_flat, flat, sign)
        np.add.at(keys_flat, flat, sign * key)
        keys_flat[flat] %= KEY_MODULUS


def _count(
    n_pieces: int, measure: Measure, index: tuple[Int64Array, ...], keys: Int64Array
) -> tuple[Int64Array, Int64Array]:
    """Counts and key sums (mod 2^31) per piece x cells of a measure, by bincount over flat ids."""
    shape = (n_pieces, *measure.shape)
    flat = np.ravel_multi_index(index, shape) if index[0].size else np.zeros(0, dtype=np.int64)
    return _tally(flat, keys, n_pieces, measure.size)


def _tally(flat: Int64Array, keys: Int64Array, rows: int, width: int) -> tuple[Int64Array, Int64Array]:
    size = rows * width
    counts = np.bincount(flat, minlength=size).astype(np.int64).reshape(rows, width)
    # Key sums stay below 2^53 (counts per cell are far below 2^22), so float64 sums are exact.
    sums = np.bincount(flat, weights=keys.astype(np.float64), minlength=size).astype(np.int64) % KEY_MODULUS
    return counts, sums.reshape(rows, width)


def _place(
    counts: Int64Array, sums: Int64Array, measure: Measure, values: Int64Array, keysums: Int64Array
) -> None:
    start = OFFSETS[measure.name]
    counts[:, start : start + measure.size] = values
    sums[:, start : start + measure.size] = keysums


def _age_at(frame: pl.DataFrame, born: str) -> Int64Array:
    years = frame["event_date"].dt.year().cast(pl.Int64) - frame[born].dt.year().cast(pl.Int64)

    # polars gives month and day as Int8: widen before combining them, or month * 100 wraps.
    def month_day(column: str) -> pl.Series:
        days = frame[column]
        return days.dt.month().cast(pl.Int32) * 100 + days.dt.day().cast(pl.Int32)

    before = month_day("event_date") < month_day(born)
    ages = (years - before.cast(pl.Int64)).fill_null(0).to_numpy().astype(np.int64)
    clipped: Int64Array = np.clip(ages, 0, MAX_AGE)
    return clipped


@dataclass
class _FlowEvents:
    """Events of one flow measure, sorted by month: piece, cell index within the measure, key."""

    measure: Measure
    month: Int64Array
    piece: Int64Array
    cell: Int64Array
    key: Int64Array

    @classmethod
    def of(
        cls,
        measure: Measure,
        month: Int64Array,
        piece: Int64Array,
        cells: tuple[Int64Array, ...],
        key: Int64Array,
    ) -> _FlowEvents:
        ok = piece >= 0
        cell = (
            np.ravel_multi_index(tuple(c[ok] for c in cells), measure.shape)
            if cells
            else np.zeros(int(ok.sum()), dtype=np.int64)
        )
        order = np.argsort(month[ok], kind="stable")
        return cls(measure, month[ok][order], piece[ok][order], cell[order], key[ok][order])

    def at(self, month: int, n_pieces: int) -> tuple[Int64Array, Int64Array]:
        low, high = np.searchsorted(self.month, [month, month + 1])
        flat = self.piece[low:high] * self.measure.size + self.cell[low:high]
        return _tally(flat, self.key[low:high], n_pieces, self.measure.size)


@dataclass
class _Moves:
    """Moves of one direction: where the person is (here) and where they came from or went (there)."""

    measure: Measure
    month: Int64Array
    here: Int64Array  # piece
    there: Int64Array  # piece, -1 outside the register
    sex: Int64Array
    age: Int64Array
    key: Int64Array


@dataclass
class _FlowInputs:
    n_pieces: int
    events: list[_FlowEvents]
    moves: list[_Moves]
    piece_target: list[Int64Array]

    @classmethod
    def of(cls, builder: ReleaseBuilder, n_pieces: int) -> _FlowInputs:
        people = builder._person_table.select("person_id", "key", "sex", "birth_date")
        frame = (
            builder._event_frame()
            .filter(
                (pl.col("month") > builder.first_month)
                & (pl.col("month") < builder.first_month + builder.months)
            )
            .drop("sex", "birth_date")  # the person's own come from the register, below
            .join(people, on="person_id", how="left")
        )

        def of_type(kind: EventType) -> pl.DataFrame:
            return frame.filter(pl.col("event_type") == kind.value)

        def arrays(f: pl.DataFrame) -> tuple[Int64Array, Int64Array, Int64Array]:
            keys = f["key"].fill_null(0).to_numpy().astype(np.int64)
            return f["month"].to_numpy(), builder._piece(builder._commune(f["area_code"]), keys), keys

        events: list[_FlowEvents] = []
        births = of_type(EventType.BIRTH)
        month, piece, keys = arrays(births)
        order = np.clip(births["birth_order"].fill_null(1).to_numpy().astype(np.int64), 1, 3) - 1
        sex = births["sex"].fill_null(1).to_numpy().astype(np.int64) - 1
        events.append(
            _FlowEvents.of(BIRTHS, month, piece, (sex, _age_at(births, "mother_birth_date"), order), keys)
        )
        deaths = of_type(EventType.DEATH)
        month, piece, keys = arrays(deaths)
        sex = deaths["sex"].fill_null(1).to_numpy().astype(np.int64) - 1
        events.append(_FlowEvents.of(DEATHS, month, piece, (sex, _age_at(deaths, "birth_date")), keys))
        for measure, kind in ((MARRIAGES, EventType.MARRIAGE), (DIVORCES, EventType.DIVORCE)):
            month, piece, keys = arrays(of_type(kind))
            events.append(_FlowEvents.of(measure, month, piece, (), keys))

        moves: list[_Moves] = []
        for measure, kind, there_column in (
            (IN_MIGRANTS, EventType.MOVE_IN, "origin_area_code"),
            (OUT_MIGRANTS, EventType.MOVE_OUT, "destination_area_code"),
        ):
            f = of_type(kind)
            month, here, keys = arrays(f)
            there = builder._piece(builder._commune(f[there_column]), keys)
            sex = f["sex"].fill_null(1).to_numpy().astype(np.int64) - 1
            moves.append(_Moves(measure, month, here, there, sex, _age_at(f, "birth_date"), keys))
        return cls(n_pieces, events, moves, builder._piece_target)

    def place(self, month: int, counts: Int64Array, sums: Int64Array) -> None:
        for flow in self.events:
            _place(counts, sums, flow.measure, *flow.at(month, self.n_pieces))

    def migration(
        self, mapping: int, month: int, n_areas: int
    ) -> dict[Measure, tuple[Int64Array, Int64Array]]:
        """In- and out-migrants of each area: a move counts only where it crosses the area's boundary,
        so a move between two communes of one district is migration for the communes, not the district."""
        target = self.piece_target[mapping]
        result: dict[Measure, tuple[Int64Array, Int64Array]] = {}
        for moves in self.moves:
            now = moves.month == month
            here = np.where(moves.here[now] >= 0, target[np.maximum(moves.here[now], 0)], -1)
            there = np.where(moves.there[now] >= 0, target[np.maximum(moves.there[now], 0)], -1)
            crossing = (here >= 0) & (here != there)
            result[moves.measure] = _count(
                n_areas,
                moves.measure,
                (here[crossing], moves.sex[now][crossing], moves.age[now][crossing]),
                moves.key[now][crossing],
            )
        return result

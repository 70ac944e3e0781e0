"""The release builder: validated register records -> base counts by area x month x measure axes.

The register is replayed as a timeline per person (snapshot, then events in date order); each stretch
between two events is a *segment* with the person's commune, marital status and contraceptive method.
A stock at the end of month m counts the segments that cover m; a flow counts the events of month m.
Every count comes with the sum of its records' secret keys (mod 2^31), which the cell-key method of
disclosure control needs. Everything is vectorised: numpy for counting, polars for the timeline.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from app.cube import (
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
_AgeAt = Callable[[pl.DataFrame, str], Int64Array]


def record_keys(secret: bytes, ids: Iterable[str]) -> Int64Array:
    """Permanent secret record keys: HMAC-SHA256(secret, id) cut to 31 bits (DESIGN.md, disclosure control)."""
    digest = hmac.digest
    return np.fromiter(
        (int.from_bytes(digest(secret, i.encode(), "sha256")[:4], "big") & 0x7FFFFFFF for i in ids),
        dtype=np.int64,
    )


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
    """How communes of the register roll up to the areas of one level of one geography version.

    `target` maps each register commune to a target area index; where a commune was split over
    several targets (re-expression through a crosswalk), `split_targets`/`split_shares` list them and
    each person is allocated to one of them by their record key, in proportion to the shares.
    """

    geography: str
    codes: list[str]
    target: NDArray[np.int64]  # per register commune; -1 where the commune is split
    split_targets: dict[int, NDArray[np.int64]] = field(default_factory=dict)
    split_shares: dict[int, NDArray[np.float64]] = field(default_factory=dict)

    def resolve(self, commune: Int64Array, key: Int64Array) -> Int64Array:
        """Target area per record; -1 stays -1 (outside the register's area)."""
        inside = commune >= 0
        result = np.full(commune.shape, -1, dtype=np.int64)
        result[inside] = self.target[commune[inside]]
        for source, targets in self.split_targets.items():
            rows = np.flatnonzero(commune == source)
            if rows.size == 0:
                continue
            bounds = np.cumsum(self.split_shares[source])
            position = key[rows].astype(np.float64) / KEY_MODULUS
            choice = np.minimum(
                np.searchsorted(bounds / bounds[-1], position, side="right"), len(targets) - 1
            )
            result[rows] = targets[choice]
        return result


@dataclass
class CubeBlock:
    """Counts and key sums of one measure for every area of one mapping and every month."""

    measure: Measure
    mapping: AreaMapping
    first_month: int
    counts: Int64Array  # shape (areas, months, *measure.shape)
    keysums: Int64Array


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
        lookup = self.commune_index
        return np.fromiter(
            (lookup.get(c, -1) if c else -1 for c in codes.to_list()), dtype=np.int64, count=len(codes)
        )

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
            .alias("method"),
        )
        events = self._event_frame()
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
            .when(kinds == EventType.BIRTH.value)
            .then(pl.lit(0, dtype=pl.Int8))
            .otherwise(None)
            .alias("married"),
            pl.when(kinds == EventType.CONTRACEPTION_CHANGE.value)
            .then(
                pl.col("contraceptive_method")
                .fill_null("")
                .replace_strict(method_codes, default=_NO_METHOD, return_dtype=pl.Int64)
            )
            .when(kinds == EventType.BIRTH.value)
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
        timeline = (
            pl.concat([snapshot, changes, spouses])
            .sort("person_id", "month", "rank", maintain_order=True)
            .with_columns(
                pl.col("present", "area_code", "married", "method").forward_fill().over("person_id"),
                pl.col("month")
                .shift(-1)
                .over("person_id")
                .fill_null(self.first_month + self.months)
                .alias("end"),
            )
            .rename({"month": "start"})
            .filter((pl.col("present") == 1) & (pl.col("end") > pl.col("start")))
            .join(self._person_table.select("person_id", "pidx"), on="person_id", how="inner")
        )
        return timeline.select(
            "pidx",
            "area_code",
            pl.col("married").fill_null(0),
            pl.col("method").fill_null(_NO_METHOD),
            "start",
            "end",
        )

    # ---- counting -------------------------------------------------------------------------------

    def build(self, mappings: list[AreaMapping]) -> list[CubeBlock]:
        """Every base measure for every mapping (a level of a geography version)."""
        blocks: list[CubeBlock] = []
        persons = self._person_table
        seg = self._segments
        commune = self._commune(seg["area_code"])
        pidx = seg["pidx"].to_numpy()
        sex = persons["sex"].to_numpy().astype(np.int64)[pidx] - 1
        birth_month = persons["birth_month"].to_numpy()[pidx]
        key = persons["key"].to_numpy()[pidx]
        start, end = seg["start"].to_numpy(), seg["end"].to_numpy()
        married = seg["married"].to_numpy().astype(bool)
        method = seg["method"].to_numpy()
        flows = self._flow_inputs()
        for mapping in mappings:
            area = mapping.resolve(commune, key)
            blocks.extend(self._stocks(mapping, area, sex, birth_month, key, start, end, married, method))
            blocks.append(self._households(mapping))
            blocks.extend(self._flows(mapping, flows))
        return blocks

    def _new_block(self, measure: Measure, mapping: AreaMapping) -> CubeBlock:
        shape = (len(mapping.codes), self.months, *measure.shape)
        return CubeBlock(
            measure,
            mapping,
            self.first_month,
            np.zeros(shape, dtype=np.int64),
            np.zeros(shape, dtype=np.int64),
        )

    def _stocks(
        self,
        mapping: AreaMapping,
        area: Int64Array,
        sex: Int64Array,
        birth_month: Int64Array,
        key: Int64Array,
        start: Int64Array,
        end: Int64Array,
        married: NDArray[np.bool_],
        method: Int64Array,
    ) -> list[CubeBlock]:
        population = self._new_block(POPULATION, mapping)
        married_women = self._new_block(MARRIED_WOMEN, mapping)
        users = self._new_block(CONTRACEPTIVE_USERS, mapping)
        n_areas = len(mapping.codes)
        inside = area >= 0
        for offset in range(self.months):
            month = self.first_month + offset
            live = inside & (start <= month) & (end > month)
            age = np.clip((month - birth_month[live]) // 12, 0, MAX_AGE)
            a, s, k = area[live], sex[live], key[live]
            _accumulate(population, offset, (a, s, age), k, n_areas)
            wife = (s == 1) & married[live] & (age >= 15) & (age <= 49)
            _accumulate(married_women, offset, (a[wife], age[wife]), k[wife], n_areas)
            using = wife & (method[live] >= 0)
            _accumulate(users, offset, (a[using], method[live][using], age[using]), k[using], n_areas)
        return [population, married_women, users]

    def _households(self, mapping: AreaMapping) -> CubeBlock:
        """Households at month end: the snapshot's, plus those formed, less those dissolved."""
        block = self._new_block(HOUSEHOLDS, mapping)
        n_areas = len(mapping.codes)
        households = self.register.households
        keys = record_keys(self.secret, households["household_id"].to_list())
        area = mapping.resolve(self._commune(households["area_code"]), keys)
        events = self._event_frame().filter(
            pl.col("event_type").is_in(
                [EventType.HOUSEHOLD_FORMED.value, EventType.HOUSEHOLD_DISSOLVED.value]
            )
        )
        event_keys = record_keys(self.secret, events["household_id"].fill_null("").to_list())
        event_area = mapping.resolve(self._commune(events["area_code"]), event_keys)
        sign = np.where(events["event_type"].to_numpy() == EventType.HOUSEHOLD_FORMED.value, 1, -1)
        offset = events["month"].to_numpy() - self.first_month
        delta = np.zeros((n_areas, self.months), dtype=np.int64)
        key_delta = np.zeros((n_areas, self.months), dtype=np.int64)
        ok = area >= 0
        np.add.at(delta[:, 0], area[ok], 1)
        np.add.at(key_delta[:, 0], area[ok], keys[ok])
        ok = (event_area >= 0) & (offset > 0) & (offset < self.months)
        np.add.at(delta, (event_area[ok], offset[ok]), sign[ok])
        np.add.at(key_delta, (event_area[ok], offset[ok]), sign[ok] * event_keys[ok])
        block.counts[:] = np.cumsum(delta, axis=1)
        block.keysums[:] = np.cumsum(key_delta, axis=1) % KEY_MODULUS
        return block

    def _flow_inputs(self) -> pl.DataFrame:
        persons = self._person_table.select("person_id", "pidx", "key", "sex", "birth_date")
        events = self._event_frame().filter(
            (pl.col("month") > self.first_month) & (pl.col("month") < self.first_month + self.months)
        )
        return events.select(
            "event_type",
            "event_date",
            "month",
            "person_id",
            "area_code",
            "origin_area_code",
            "destination_area_code",
            "mother_birth_date",
            "birth_order",
            pl.col("sex").alias("event_sex"),
        ).join(persons, on="person_id", how="left")

    def _flows(self, mapping: AreaMapping, flows: pl.DataFrame) -> list[CubeBlock]:
        n_areas = len(mapping.codes)
        blocks: list[CubeBlock] = []

        def rows(event_type: EventType) -> pl.DataFrame:
            return flows.filter(pl.col("event_type") == event_type.value)

        def age_at_event(frame: pl.DataFrame, born: str) -> Int64Array:
            years = frame["event_date"].dt.year().cast(pl.Int64) - frame[born].dt.year().cast(pl.Int64)
            before = (frame["event_date"].dt.month() * 100 + frame["event_date"].dt.day()) < (
                frame[born].dt.month() * 100 + frame[born].dt.day()
            )
            ages = (years - before.cast(pl.Int64)).fill_null(0).to_numpy().astype(np.int64)
            clipped: Int64Array = np.clip(ages, 0, MAX_AGE)
            return clipped

        births = rows(EventType.BIRTH)
        block = self._new_block(BIRTHS, mapping)
        keys = births["key"].to_numpy()
        area = mapping.resolve(self._commune(births["area_code"]), keys)
        order = np.clip(births["birth_order"].fill_null(1).to_numpy().astype(np.int64), 1, 3) - 1
        sex = births["event_sex"].fill_null(1).to_numpy().astype(np.int64) - 1
        _accumulate_flow(
            block, births, (area, sex, age_at_event(births, "mother_birth_date"), order), keys, n_areas
        )
        blocks.append(block)

        for measure, event_type in ((DEATHS, EventType.DEATH),):
            frame = rows(event_type)
            block = self._new_block(measure, mapping)
            keys = frame["key"].to_numpy()
            area = mapping.resolve(self._commune(frame["area_code"]), keys)
            sex = frame["sex"].fill_null(1).to_numpy().astype(np.int64) - 1
            _accumulate_flow(block, frame, (area, sex, age_at_event(frame, "birth_date")), keys, n_areas)
            blocks.append(block)

        blocks.extend(self._migration(mapping, flows, age_at_event))

        for measure, event_type in ((MARRIAGES, EventType.MARRIAGE), (DIVORCES, EventType.DIVORCE)):
            frame = rows(event_type)
            block = self._new_block(measure, mapping)
            keys = frame["key"].fill_null(0).to_numpy()
            area = mapping.resolve(self._commune(frame["area_code"]), keys)
            _accumulate_flow(block, frame, (area,), keys, n_areas)
            blocks.append(block)
        return blocks

    def _migration(self, mapping: AreaMapping, flows: pl.DataFrame, age_at_event: _AgeAt) -> list[CubeBlock]:
        """In- and out-migrants of each area: a move counts only where it crosses the area's boundary.

        So a move between two communes of one district is migration for the communes, not the district.
        """
        n_areas = len(mapping.codes)
        inflow, outflow = self._new_block(IN_MIGRANTS, mapping), self._new_block(OUT_MIGRANTS, mapping)
        for block, event_type, here_column, there_column in (
            (inflow, EventType.MOVE_IN, "area_code", "origin_area_code"),
            (outflow, EventType.MOVE_OUT, "area_code", "destination_area_code"),
        ):
            frame = flows.filter(pl.col("event_type") == event_type.value)
            keys = frame["key"].to_numpy()
            here = mapping.resolve(self._commune(frame[here_column]), keys)
            there = mapping.resolve(self._commune(frame[there_column].fill_null("")), keys)
            crossing = here != there
            frame = frame.filter(pl.Series(crossing))
            sex = frame["sex"].fill_null(1).to_numpy().astype(np.int64) - 1
            _accumulate_flow(
                block,
                frame,
                (here[crossing], sex, age_at_event(frame, "birth_date")),
                keys[crossing],
                n_areas,
            )
        return [inflow, outflow]


def _accumulate(
    block: CubeBlock, offset: int, index: tuple[Int64Array, ...], keys: Int64Array, n_areas: int
) -> None:
    """Add records to one month of a block: counts and key sums, by bincount over flat cell ids."""
    shape = (n_areas, *block.measure.shape)
    ok = index[0] >= 0
    flat = np.ravel_multi_index(tuple(i[ok] for i in index), shape)
    size = int(np.prod(shape))
    block.counts[:, offset] = np.bincount(flat, minlength=size).reshape(shape)
    sums = np.bincount(flat, weights=keys[ok].astype(np.float64), minlength=size)
    block.keysums[:, offset] = (sums.astype(np.int64) % KEY_MODULUS).reshape(shape)


def _accumulate_flow(
    block: CubeBlock, frame: pl.DataFrame, index: tuple[Int64Array, ...], keys: Int64Array, n_areas: int
) -> None:
    offsets = frame["month"].to_numpy() - block.first_month
    months = block.counts.shape[1]
    shape = (n_areas, months, *block.measure.shape)
    ok = index[0] >= 0
    full_index = (index[0][ok], offsets[ok], *(i[ok] for i in index[1:]))
    flat = np.ravel_multi_index(full_index, shape)
    size = int(np.prod(shape))
    block.counts += np.bincount(flat, minlength=size).reshape(shape)
    sums = np.bincount(flat, weights=keys[ok].astype(np.float64), minlength=size).astype(np.int64)
    block.keysums[:] = (block.keysums + sums.reshape(shape)) % KEY_MODULUS

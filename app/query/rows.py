"""Published rows, decoded, held in process: a release never changes once published, so a row read
from the database once serves every later query that needs it, until memory is wanted for others.

A data request needs a few rows (an area's month-end stocks and a year's month flows: 13 rows for a
year's CBR), and neighbouring questions share them: a year and its quarters, POP and CBR of one
area. Reading them costs a connection from the pool, a statement and a zlib decode per row; from
here it costs a dictionary lookup. The values are the published ones (app.privacy), so holding them
adds nothing a response could not already show.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from app.privacy.cellkey import decode_exact, decode_values
from app.repositories.releases import ReleaseRepository, ServingReads, ServingReadUnavailable

RowKey = tuple[str, str, str, str, int]  # release, geography, time unit, area, period


class Wanted(NamedTuple):
    """Rows of one time unit's bundle: every area's row at every period."""

    time_unit: str
    areas: Sequence[str]
    periods: Sequence[int]


_ENTRY_OVERHEAD = 200  # bytes of key, tuple and array headers around an entry's data, roughly


class Row(NamedTuple):
    """One area's published atoms for one period of one time unit, read-only."""

    values: NDArray[np.int32]
    exact: NDArray[np.uint8] | None  # 1 per value that equals the true count; None when none does


# A row as held: a plain tuple of arrays, which the garbage collector stops tracking. Held as objects
# (a class's or a named tuple's), the rows of an hour's requests made each full collection ~30 ms
# longer: a pause that every request in flight shares, and the most of the p99 latency.
_Held = tuple[NDArray[np.int32], NDArray[np.uint8] | None]


def _size(held: _Held | None) -> int:
    """What an entry holds in memory; an absent row is its key alone."""
    if held is None:
        return _ENTRY_OVERHEAD
    values, exact = held
    return values.nbytes + (0 if exact is None else exact.nbytes) + _ENTRY_OVERHEAD


class PublishedRows:
    """Least recently used rows up to `max_bytes` (0 keeps none). Rows a release does not store
    (areas without any person in a period) are remembered as absent, so they are not asked again."""

    def __init__(self, max_bytes: int, direct: ServingReads | None = None) -> None:
        """`direct`: where the rows not held are read outside the session, when there is a reader
        for the database (app.repositories.releases.serving_reads)."""
        self.max_bytes = max_bytes
        self.direct = direct
        self._rows: OrderedDict[RowKey, _Held | None] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def nbytes(self) -> int:
        return self._bytes

    async def read(
        self,
        releases: ReleaseRepository,
        release_id: str,
        geography: str,
        wanted: Sequence[Wanted],
    ) -> dict[tuple[str, str, int], Row]:
        """The stored rows asked for, keyed (time unit, area, period); absent ones are left out. Those
        not held here are read in one statement, whatever their time units: directly when this has
        a direct reader, else (or when that cannot read) from `releases`."""
        found: dict[tuple[str, str, int], Row] = {}
        missing: list[Wanted] = []
        rows = self._rows
        for unit, areas, periods in wanted:
            lacking: list[str] = []
            for area in areas:
                complete = True
                for period in periods:
                    key = (release_id, geography, unit, area, period)
                    if key in rows:
                        held = rows[key]
                        rows.move_to_end(key)
                        if held is not None:
                            found[(unit, area, period)] = Row(*held)
                    else:
                        complete = False
                if not complete:
                    lacking.append(area)
            self.misses += len(lacking)
            self.hits += len(areas) - len(lacking)
            if lacking:
                missing.append(Wanted(unit, lacking, periods))
        if not missing:
            return found
        read = await self._fetch(
            releases,
            release_id,
            geography,
            list(dict.fromkeys(a for w in missing for a in w.areas)),
            [w.time_unit for w in missing],
            sorted({p for w in missing for p in w.periods}),
        )
        stored = {
            (unit, area, period): Row(decode_values(values), decode_exact(exact))
            for unit, area, period, values, exact in read
        }
        for unit, areas, periods in missing:  # what the union read for other units is not kept
            for area in areas:
                for period in periods:
                    row = stored.get((unit, area, period))
                    self._keep((release_id, geography, unit, area, period), row)
                    if row is not None:
                        found[(unit, area, period)] = row
        return found

    async def _fetch(
        self,
        releases: ReleaseRepository,
        release_id: str,
        geography: str,
        areas: Sequence[str],
        time_units: Sequence[str],
        periods: Sequence[int],
    ) -> Sequence[tuple[str, str, int, bytes, bytes | None]]:
        if self.direct is not None:
            with contextlib.suppress(ServingReadUnavailable):
                return await self.direct.published_rows(release_id, geography, areas, time_units, periods)
        return await releases.published_rows(release_id, geography, areas, time_units, periods)

    def _keep(self, key: RowKey, row: Row | None) -> None:
        held = None if row is None else (row.values, row.exact)
        size = _size(held)
        if size > self.max_bytes:
            return
        if key in self._rows:  # two requests read the same row at once
            self._bytes -= _size(self._rows.pop(key))
        self._rows[key] = held
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._rows.popitem(last=False)
            self._bytes -= _size(dropped)

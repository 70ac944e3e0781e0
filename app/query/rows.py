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
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from app.db import waiting
from app.privacy.cellkey import decode_exact, decode_values
from app.repositories.releases import PublishedRow, ReleaseRepository, ServingReads, ServingReadUnavailable

RowKey = tuple[str, str, str, str, int]  # release, geography, time unit, area, period


class Wanted(NamedTuple):
    """Rows of one time unit's bundle: every area's row at every period."""

    time_unit: str
    areas: Sequence[str]
    periods: Sequence[int]


_ENTRY_OVERHEAD = 200  # bytes of key, tuple and array headers around an entry's data, roughly


# One area's published atoms for one period of one time unit, read-only: (values, exact), where
# exact has a 1 per value that equals the true count, or is None when none does.
#
# A plain tuple, held and handed out as it is: the garbage collector stops tracking plain tuples.
# Held as objects (a class's or a named tuple's), the ~50,000 rows of a few minutes' requests made
# each full collection ~30 ms longer: a pause that every request in flight shares, and most of the
# p99 latency. Nor does a query build an object per row it reads (a year's CBR of 166 communes
# reads ~2,800).
Row = tuple[NDArray[np.int32], NDArray[np.uint8] | None]
_Encoded = tuple[bytes, bytes | None]  # a row read ahead, as stored: decoded when first asked for

_UNKNOWN: Final[Any] = object()  # a key not held at all (None is a row known to be absent)
READ_AHEAD_AREAS: Final = 2  # a request for one or two areas reads their whole series (see read)


def _decode(values: bytes, exact: bytes | None) -> Row:
    return decode_values(values), decode_exact(exact)


def _nbytes(part: NDArray[Any] | bytes | None) -> int:
    if part is None:
        return 0
    return part.nbytes if isinstance(part, np.ndarray) else len(part)


def _size(held: Row | _Encoded | None) -> int:
    """What an entry holds in memory; an absent row is its key alone."""
    return _ENTRY_OVERHEAD if held is None else _nbytes(held[0]) + _nbytes(held[1]) + _ENTRY_OVERHEAD


class PublishedRows:
    """Least recently used rows up to `max_bytes` (0 keeps none). Rows a release does not store
    (areas without any person in a period) are remembered as absent, so they are not asked again."""

    def __init__(
        self, max_bytes: int, direct: ServingReads | None = None, read_ahead_areas: int = READ_AHEAD_AREAS
    ) -> None:
        """`direct`: where the rows not held are read outside the session, when there is a reader
        for the database (app.repositories.releases.serving_reads). `read_ahead_areas`: see read."""
        self.max_bytes = max_bytes
        self.direct = direct
        self.read_ahead_areas = read_ahead_areas
        self._rows: OrderedDict[RowKey, Row | _Encoded | None] = OrderedDict()
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
        series_units: Sequence[str] = (),
    ) -> dict[tuple[str, str, int], Row]:
        """The stored rows asked for, keyed (time unit, area, period); absent ones are left out. Those
        not held here are read in one statement, whatever their time units: directly when this has
        a direct reader, else (or when that cannot read) from `releases`. When they are those of at
        most `read_ahead_areas` areas, that statement reads those areas' whole series, of the time
        units asked for and of `series_units` (the release's others): a trend, a chart or the next
        screen asks for the area's other periods next, or its quarters after its years, and they
        come in the same statement (a month series is ~60 rows of ~200 bytes)."""
        found: dict[tuple[str, str, int], Row] = {}
        missing: list[Wanted] = []
        rows = self._rows
        for unit, areas, periods in wanted:
            lacking: list[str] = []
            for area in areas:
                complete = True
                for period in periods:
                    key = (release_id, geography, unit, area, period)
                    held = rows.get(key, _UNKNOWN)
                    if held is _UNKNOWN:
                        complete = False
                        continue
                    rows.move_to_end(key)
                    if held is not None:
                        found[(unit, area, period)] = (
                            self._decoded(key, held) if type(held[0]) is bytes else held
                        )
                if not complete:
                    lacking.append(area)
            self.misses += len(lacking)
            self.hits += len(areas) - len(lacking)
            if lacking:
                missing.append(Wanted(unit, lacking, periods))
        if not missing:
            return found
        areas_lacking = list(dict.fromkeys(a for w in missing for a in w.areas))
        ahead = self.max_bytes > 0 and len(areas_lacking) <= self.read_ahead_areas  # what could it keep?
        units = list(dict.fromkeys([*(w.time_unit for w in missing), *(series_units if ahead else ())]))
        read = await self._fetch(
            releases,
            release_id,
            geography,
            areas_lacking,
            units,
            None if ahead else sorted({p for w in missing for p in w.periods}),
        )
        asked = {(w.time_unit, area, period) for w in missing for area in w.areas for period in w.periods}
        series = {(unit, area) for unit in units for area in areas_lacking} if ahead else set()
        for unit, area, period, values, exact in read:
            at = (unit, area, period)
            key = (release_id, geography, unit, area, period)
            if at in asked:
                if at not in found:  # else held already, and returned above
                    row = found[at] = _decode(values, exact)
                    self._keep(key, row)
            elif (unit, area) in series and key not in rows:
                self._keep(key, (values, exact))  # kept encoded until it is asked for
            # else: read by the union for another time unit, not asked for: not kept
        for unit, area, period in asked - found.keys():  # not stored: absent
            self._keep((release_id, geography, unit, area, period), None)
        return found

    def _decoded(self, key: RowKey, held: _Encoded) -> Row:
        """A row read ahead, decoded (and kept decoded) as it is first asked for."""
        row = _decode(*held)
        self._keep(key, row)
        return row

    async def _fetch(
        self,
        releases: ReleaseRepository,
        release_id: str,
        geography: str,
        areas: Sequence[str],
        time_units: Sequence[str],
        periods: Sequence[int] | None,
    ) -> Sequence[PublishedRow]:
        async with waiting():
            if self.direct is not None:
                with contextlib.suppress(ServingReadUnavailable):
                    return await self.direct.published_rows(release_id, geography, areas, time_units, periods)
            return await releases.published_rows(release_id, geography, areas, time_units, periods)

    def _keep(self, key: RowKey, held: Row | _Encoded | None) -> None:
        size = _size(held)
        if size > self.max_bytes:
            return
        if key in self._rows:  # two requests read the same row at once, or it is decoded now
            self._bytes -= _size(self._rows.pop(key))
        self._rows[key] = held
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._rows.popitem(last=False)
            self._bytes -= _size(dropped)

"""The published rows held in process (app.query.rows): the same answers as reading them each time,
read from the database once, and bounded in memory."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import create_engine, session_factory
from app.privacy.cellkey import decode_values
from app.privacy.lattice import TimeGrain
from app.query.periods import parse_periods
from app.query.rows import PublishedRows, Wanted
from app.query.service import ObservationQuery, QueryService
from app.reference import Snapshot, read_snapshot
from app.repositories.releases import ReleaseRepository, SqliteServingReads
from auth.principal import Tier
from tests.conftest import settings_for

QUERIES = [
    ObservationQuery("POP", "vn-2025-01", ("24", "38"), tuple(parse_periods("2023,2024-Q2")), by=("sex",)),
    ObservationQuery("CBR", "vn-2025-01", ("24",), tuple(parse_periods("2024"))),
    ObservationQuery("CBR", "vn-2025-01", ("24",), tuple(parse_periods("2024-Q1,2024-Q3"))),
    ObservationQuery("POP", "vn-2025-01", ("24",), tuple(parse_periods("2024")), age=(), by=("age5",)),
]


@pytest.fixture
async def session(demo_database: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(settings_for(demo_database))
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def answers(service: QueryService, tier: Tier) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    for query in QUERIES:
        result = await service.observations(query, tier)
        found += [
            (o.area, o.period, tuple(o.breakdown.items()), o.value, o.status, o.numerator, o.perturbed)
            for o in result.observations
        ]
    return found


async def month_rows(session: AsyncSession) -> tuple[str, list[str], list[int]]:
    snapshot = await read_snapshot(session)
    release = snapshot.latest_release("register")
    assert release is not None
    commune = snapshot.descendant_codes("vn-2025-01", "24", "commune")[0]
    return (
        release.id,
        ["24", "38", commune],
        [release.last_month - 2, release.last_month - 1, release.last_month],
    )


async def test_answers_equal_those_read_each_time_for_every_tier(session: AsyncSession) -> None:
    snapshot: Snapshot = await read_snapshot(session)
    shared = PublishedRows(64 * 1024 * 1024)
    for tier in (Tier.PUBLIC, Tier.DEPARTMENT):
        uncached = await answers(QueryService(session, 10_000, snapshot), tier)
        first = await answers(QueryService(session, 10_000, snapshot, shared), tier)
        misses = shared.misses
        again = await answers(QueryService(session, 10_000, snapshot, shared), tier)
        assert first == uncached
        assert again == uncached
        assert shared.misses == misses  # the second pass read nothing
    assert len(shared) > 0
    assert shared.hits > 0


async def test_rows_are_read_once_and_equal_the_stored_ones(session: AsyncSession) -> None:
    release_id, areas, months = await month_rows(session)
    repository = ReleaseRepository(session)
    rows = PublishedRows(64 * 1024 * 1024)
    first = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas, months)])
    assert (rows.hits, rows.misses) == (0, 3)
    again = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas[::-1], months)])
    assert (rows.hits, rows.misses) == (3, 3)
    assert again == first
    assert len(first) == 9
    stored = await repository.published_rows(release_id, "vn-2025-01", areas, ["month"], months)
    assert len(stored) == 9
    for _, area, month, values, _ in stored:
        assert np.array_equal(first[("month", area, month)][0], decode_values(values))
    with pytest.raises(ValueError, match="read-only"):
        first[("month", "24", months[0])][0][0] = 0  # a held row cannot be changed by a caller
    gc.collect()  # held rows are plain tuples of arrays, which a full collection need not follow
    assert not any(gc.is_tracked(held) for held in rows._rows.values())


async def test_absent_rows_are_remembered_as_absent(session: AsyncSession) -> None:
    release_id, _, months = await month_rows(session)
    rows = PublishedRows(64 * 1024 * 1024)
    repository = ReleaseRepository(session)
    assert (
        await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", ["no-such-area"], months)])
        == {}
    )
    assert (
        await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", ["no-such-area"], months)])
        == {}
    )
    assert (rows.hits, rows.misses) == (1, 1)


async def test_memory_stays_under_the_bound_dropping_the_least_recently_used(session: AsyncSession) -> None:
    release_id, areas, months = await month_rows(session)
    repository = ReleaseRepository(session)
    one = PublishedRows(64 * 1024 * 1024, read_ahead_areas=0)
    await one.read(repository, release_id, "vn-2025-01", [Wanted("month", areas[:1], months[:1])])
    size = one.nbytes  # one row
    rows = PublishedRows(size * 4, read_ahead_areas=0)
    await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas[:1], months)])  # 3 rows
    await rows.read(
        repository, release_id, "vn-2025-01", [Wanted("month", areas[1:2], months)]
    )  # 3 more: 2 dropped
    assert rows.nbytes <= size * 4
    assert len(rows) == 4
    misses = rows.misses
    await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas[1:2], months)])  # still held
    assert rows.misses == misses
    await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas[:1], months)])  # was dropped
    assert rows.misses == misses + 1
    nothing = PublishedRows(0)  # with read-ahead: nothing kept either
    await nothing.read(repository, release_id, "vn-2025-01", [Wanted("month", areas, months)])
    assert len(nothing) == 0
    assert nothing.nbytes == 0


class CountingRepository(ReleaseRepository):
    """The real repository, counting the statements it is asked for."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.calls = 0
        self.periods: list[object] = []  # of each call: None for whole series

    async def published_rows(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.periods.append(args[4])
        return await super().published_rows(*args, **kwargs)


async def test_rows_of_several_time_units_are_read_in_one_statement(session: AsyncSession) -> None:
    release_id, areas, months = await month_rows(session)
    quarter_end = next(m for m in months if TimeGrain.QUARTER.ends_unit(m))
    repository = CountingRepository(session)
    rows = PublishedRows(64 * 1024 * 1024)
    wanted = [Wanted("month", areas, months), Wanted("quarter", areas[:1], [quarter_end])]
    found = await rows.read(repository, release_id, "vn-2025-01", wanted)
    assert repository.calls == 1
    assert ("quarter", "24", quarter_end) in found
    assert ("quarter", "38", quarter_end) not in found  # read by the union, not asked for
    assert len(rows) == len(areas) * len(months) + 1
    each = [
        await PublishedRows(0).read(ReleaseRepository(session), release_id, "vn-2025-01", [w]) for w in wanted
    ]
    alone = {**each[0], **each[1]}
    assert found.keys() == alone.keys()
    assert all(np.array_equal(found[key][0], alone[key][0]) for key in found)
    assert await rows.read(repository, release_id, "vn-2025-01", wanted) == found
    assert repository.calls == 1


def sqlite_file(database_url: str) -> Path:
    path = settings_for(database_url).sqlite_path()
    if path is None:
        pytest.skip("the direct reader serves SQLite files")
    return path


async def test_direct_reads_equal_the_sessions_and_leave_it_unused(
    session: AsyncSession, demo_database: str
) -> None:
    release_id, areas, months = await month_rows(session)
    direct = SqliteServingReads(sqlite_file(demo_database))
    try:
        through_session = await ReleaseRepository(session).published_rows(
            release_id, "vn-2025-01", areas, ["month", "quarter"], months
        )
        read = await direct.published_rows(release_id, "vn-2025-01", areas, ["month", "quarter"], months)
        assert sorted(read) == sorted(through_session)
        assert len(read) == 12  # 3 areas x (3 months and the quarter they end)
        repository = CountingRepository(session)
        rows = PublishedRows(64 * 1024 * 1024, direct)
        found = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas, months)])
        assert repository.calls == 0
        alone = await PublishedRows(0).read(
            ReleaseRepository(session), release_id, "vn-2025-01", [Wanted("month", areas, months)]
        )
        assert found.keys() == alone.keys()
        assert all(np.array_equal(found[key][0], alone[key][0]) for key in found)
        snapshot = await read_snapshot(session)
        for tier in (Tier.PUBLIC, Tier.DEPARTMENT):
            assert await answers(QueryService(session, 10_000, snapshot, PublishedRows(0, direct)), tier) == (
                await answers(QueryService(session, 10_000, snapshot), tier)
            )
    finally:
        direct.close()


async def test_without_a_readable_file_rows_are_read_through_the_session(
    session: AsyncSession, tmp_path: Path
) -> None:
    release_id, areas, months = await month_rows(session)
    repository = CountingRepository(session)
    rows = PublishedRows(64 * 1024 * 1024, SqliteServingReads(tmp_path / "not-there.db"))
    found = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas, months)])
    assert repository.calls == 1
    assert len(found) == 9
    assert not (tmp_path / "not-there.db").exists()  # the reader never creates a database


async def test_direct_reads_see_what_is_published_after_they_connect(tmp_path: Path) -> None:
    path = tmp_path / "serving.db"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute(
        "CREATE TABLE published_cell (release_id TEXT, geography TEXT, area_code TEXT, time_unit TEXT, "
        'period INTEGER, "values" BLOB, exact BLOB)'
    )
    writer.commit()
    direct = SqliteServingReads(path)
    try:
        assert await direct.published_rows("r1", "g", ["01"], ["month"], [5]) == []
        writer.execute("INSERT INTO published_cell VALUES ('r1', 'g', '01', 'month', 5, x'00', NULL)")
        writer.commit()
        assert await direct.published_rows("r1", "g", ["01"], ["month"], [5]) == [
            ("month", "01", 5, b"\x00", None)
        ]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            direct._connect().execute("DELETE FROM published_cell")
    finally:
        direct.close()
        writer.close()


async def test_large_reads_leave_the_loop_for_the_session(session: AsyncSession, demo_database: str) -> None:
    release_id, _, months = await month_rows(session)
    snapshot = await read_snapshot(session)
    communes = snapshot.descendant_codes("vn-2025-01", "24", "commune")
    many = communes[: 2 + SqliteServingReads.MAX_ROWS // len(months) + 1]
    assert (len(many) - 2) * len(months) > SqliteServingReads.MAX_ROWS  # beyond the two read first
    direct = SqliteServingReads(sqlite_file(demo_database))
    try:
        repository = CountingRepository(session)
        rows = PublishedRows(64 * 1024 * 1024, direct)
        small = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", many[:2], months)])
        assert repository.calls == 0
        large = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", many, months)])
        assert repository.calls == 1  # the rows not held yet, through the session
        assert small.keys() <= large.keys()
    finally:
        direct.close()


async def test_the_series_of_one_or_two_areas_is_read_ahead(session: AsyncSession) -> None:
    release_id, areas, months = await month_rows(session)
    quarter_end = next(m for m in months if TimeGrain.QUARTER.ends_unit(m))
    repository = CountingRepository(session)
    rows = PublishedRows(64 * 1024 * 1024)
    first = await rows.read(repository, release_id, "vn-2025-01", [Wanted("month", areas[:1], months[:1])])
    assert repository.calls == 1
    assert len(first) == 1
    assert len(rows) > 12  # the area's whole month series, kept encoded until asked for
    later = [Wanted("month", areas[:1], months), Wanted("quarter", areas[:1], [quarter_end])]
    found = await rows.read(repository, release_id, "vn-2025-01", later)
    assert repository.calls == 2  # the months were held; the quarter series was not
    again = await rows.read(repository, release_id, "vn-2025-01", later)
    assert repository.calls == 2
    alone = await PublishedRows(0).read(ReleaseRepository(session), release_id, "vn-2025-01", later)
    for result in (found, again):
        assert result.keys() == alone.keys()
        assert all(np.array_equal(result[key][0], alone[key][0]) for key in alone)
        assert all(
            (result[key][1] is None and alone[key][1] is None)
            or np.array_equal(result[key][1], alone[key][1])  # type: ignore[arg-type]
            for key in alone
        )
    assert repository.periods[0] is None  # the first read was of the whole series
    keeping_none = CountingRepository(session)
    assert len(await PublishedRows(0).read(keeping_none, release_id, "vn-2025-01", later)) == len(alone)
    assert keeping_none.periods[0] is not None  # nothing could be kept: no read ahead
    wide = PublishedRows(64 * 1024 * 1024)
    await wide.read(repository, release_id, "vn-2025-01", [Wanted("month", areas, months[:1])])
    assert repository.calls == 3
    assert len(wide) == 3  # three areas: the rows asked for, not their series


async def test_the_release_s_other_time_units_are_read_ahead_with_the_series(session: AsyncSession) -> None:
    release_id, areas, months = await month_rows(session)
    quarter_end = next(m for m in months if TimeGrain.QUARTER.ends_unit(m))
    repository = CountingRepository(session)
    rows = PublishedRows(64 * 1024 * 1024)
    months_only = [Wanted("month", areas[:1], months[:1])]
    await rows.read(repository, release_id, "vn-2025-01", months_only, series_units=["month", "quarter"])
    assert repository.calls == 1
    quarters = [Wanted("quarter", areas[:1], [quarter_end])]
    found = await rows.read(repository, release_id, "vn-2025-01", quarters, series_units=["month", "quarter"])
    assert repository.calls == 1  # the quarter series came with the month series
    alone = await PublishedRows(0).read(ReleaseRepository(session), release_id, "vn-2025-01", quarters)
    assert found.keys() == alone.keys()
    assert len(found) == 1
    assert all(np.array_equal(found[key][0], alone[key][0]) for key in alone)
    wide = PublishedRows(64 * 1024 * 1024)
    three = [Wanted("month", areas, months[:1])]
    await wide.read(repository, release_id, "vn-2025-01", three, series_units=["month", "quarter"])
    assert len(wide) == 3  # three areas: no series read ahead, of any time unit

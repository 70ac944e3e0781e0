"""SQL for register loads, rejects, releases and the base cube."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn
from sqlmodel import SQLModel, col, select

from app.db import CONNECTION_LOST, connection_lost
from app.models import Area, AreaLink, CubeCell, LoadReject, RegisterLoad, Release
from app.settings import Settings

_BATCH = 5000


class _Statement(NamedTuple):
    """A serving read in each driver's own dialect. SQLAlchemy's aiosqlite adapter makes four trips to
    the driver's thread per statement (cursor, execute, fetch, close) and handles results per row; the
    drivers' one-call fetches (aiosqlite's execute_fetchall, asyncpg's fetch of a prepared statement)
    took an uncached single-area data request from ~1.9 to ~1.1 ms in process."""

    sqlite: str  # {units}, {areas} and {periods} become as many ? as there are units, codes and periods
    postgres: str


_PUBLISHED = _Statement(
    'SELECT time_unit, area_code, period, "values", exact FROM published_cell WHERE release_id = ? '
    "AND geography = ? AND time_unit IN ({units}) AND area_code IN ({areas}) AND period IN ({periods})",
    'SELECT time_unit, area_code, period, "values", exact FROM published_cell WHERE release_id = $1 '
    "AND geography = $2 AND time_unit = ANY($3::varchar[]) AND area_code = ANY($4::varchar[]) "
    "AND period = ANY($5::int[])",
)
_PUBLISHED_SERIES = _Statement(  # every period of the areas' time units
    'SELECT time_unit, area_code, period, "values", exact FROM published_cell WHERE release_id = ? '
    "AND geography = ? AND time_unit IN ({units}) AND area_code IN ({areas})",
    'SELECT time_unit, area_code, period, "values", exact FROM published_cell WHERE release_id = $1 '
    "AND geography = $2 AND time_unit = ANY($3::varchar[]) AND area_code = ANY($4::varchar[])",
)
_CUBE = _Statement(
    "SELECT area_code, month, counts FROM cube_cell WHERE release_id = ? AND geography = ? "
    "AND area_code IN ({areas}) AND month IN ({periods})",
    "SELECT area_code, month, counts FROM cube_cell WHERE release_id = $1 AND geography = $2 "
    "AND area_code = ANY($3::varchar[]) AND month = ANY($4::int[])",
)
_AREAS_PER_STATEMENT = 900  # with the units and periods, under SQLite's oldest variable limit (999)


def _chunks(codes: Sequence[str]) -> list[list[str]]:
    listed = list(codes)
    return [listed[i : i + _AREAS_PER_STATEMENT] for i in range(0, len(listed), _AREAS_PER_STATEMENT)]


def _marks(count: int) -> str:
    return ",".join("?" * count)


_Read = tuple[str, list[Any]]  # a statement in one dialect, and its arguments
PublishedRow = tuple[str, str, int, bytes, bytes | None]  # time unit, area, period, values, exact


def _reads(
    statement: _Statement,
    postgres: bool,
    fixed: list[Any],
    units: Sequence[str] | None,
    areas: Sequence[str],
    periods: Sequence[int] | None,
) -> list[_Read]:
    """One serving statement per chunk of areas, in the dialect's own form, with its arguments;
    `units` and `periods` are None for statements without those conditions."""
    given = None if units is None else list(units)
    wanted = None if periods is None else [int(p) for p in periods]
    reads: list[_Read] = []
    for chunk in _chunks(areas):
        if postgres:
            reads.append(
                (statement.postgres, [*fixed, *(x for x in (given, chunk, wanted) if x is not None)])
            )
        else:
            sql = statement.sqlite.format(
                units=_marks(len(given or ())), areas=_marks(len(chunk)), periods=_marks(len(wanted or ()))
            )
            reads.append((sql, [*fixed, *(given or ()), *chunk, *(wanted or ())]))
    return reads


def _published_reads(
    postgres: bool,
    release_id: str,
    geography: str,
    areas: Sequence[str],
    time_units: Sequence[str],
    periods: Sequence[int] | None,
) -> list[_Read]:
    """Published rows of the areas' time units: at these periods, or (None) at every period."""
    statement = _PUBLISHED_SERIES if periods is None else _PUBLISHED
    return _reads(statement, postgres, [release_id, geography], time_units, areas, periods)


async def _asyncpg_rows(pool: Pool, raw: PoolProxiedConnection, sql: str, args: list[Any]) -> list[Any]:
    """One serving statement by asyncpg on a pooled connection. A connection found dropped is
    reported as SQLAlchemy reports its own (app.db.connection_lost, then a DBAPIError marked
    invalidated), so app.db.read_retrying reads again on a fresh one."""
    driver: Any = raw.driver_connection
    try:
        return [tuple(row) for row in await driver.fetch(sql, *args)]
    except CONNECTION_LOST as exc:
        await connection_lost(pool, raw, exc)
        raise DBAPIError(sql, None, exc, connection_invalidated=True) from exc


class ReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- loads -----------------------------------------------------------------------------------

    async def start_load(self, connector: str, source: str) -> RegisterLoad:
        load = RegisterLoad(
            connector=connector, source=source, input_hash="", status="running", started_at=datetime.now(UTC)
        )
        self.session.add(load)
        await self.session.flush()
        return load

    async def finish_load(self, load_id: int, **values: Any) -> None:
        values["finished_at"] = datetime.now(UTC)
        await self.session.execute(
            update(RegisterLoad).where(col(RegisterLoad.id) == load_id).values(**values)
        )

    async def add_rejects(self, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), _BATCH):
            await self.session.execute(insert(LoadReject), list(rows[start : start + _BATCH]))

    async def get_load(self, load_id: int) -> RegisterLoad | None:
        return await self.session.get(RegisterLoad, load_id)

    async def rejects(self, load_id: int, limit: int) -> Sequence[LoadReject]:
        query = (
            select(LoadReject)
            .where(col(LoadReject.load_id) == load_id)
            .order_by(col(LoadReject.id))
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    # ---- reference data the builder needs ----------------------------------------------------------

    async def areas(self, geography: str) -> Sequence[Area]:
        return (await self.session.scalars(select(Area).where(col(Area.geography) == geography))).all()

    async def links_from(self, geography: str) -> dict[str, Sequence[AreaLink]]:
        rows = (
            await self.session.scalars(select(AreaLink).where(col(AreaLink.from_geography) == geography))
        ).all()
        grouped: dict[str, Sequence[AreaLink]] = {}
        for link in rows:
            grouped.setdefault(link.to_geography, [])
            grouped[link.to_geography].append(link)  # type: ignore[attr-defined]
        return grouped

    # ---- releases ----------------------------------------------------------------------------------

    async def release_with_hash(self, kind: str, input_hash: str) -> Release | None:
        query = select(Release).where(col(Release.kind) == kind, col(Release.input_hash) == input_hash)
        return (await self.session.scalars(query.limit(1))).first()

    async def add_release(
        self, release: Release, rows: Iterable[tuple[type[SQLModel], dict[str, Any]]]
    ) -> int:
        """Insert a release and its rows (cube and published atoms) in the caller's transaction: it
        appears whole or not at all, with the tables' statistics brought up to date. Returns the
        number of cube rows."""
        self.session.add(release)
        await self.session.flush()
        batches: dict[type[SQLModel], list[dict[str, Any]]] = {}
        written = 0

        async def flush(table: type[SQLModel], batch: list[dict[str, Any]]) -> None:
            # A Core insert of the table: an executemany, without the ORM's per-row bookkeeping.
            await self.session.execute(insert(SQLModel.metadata.tables[str(table.__tablename__)]), batch)
            batch.clear()

        for table, row in rows:
            batch = batches.setdefault(table, [])
            batch.append(row)
            written += table is CubeCell
            if len(batch) >= _BATCH:
                await flush(table, batch)
        for table, batch in batches.items():
            if batch:
                await flush(table, batch)
        await self._refresh_statistics()
        return written

    async def list_releases(self) -> Sequence[Release]:
        return (await self.session.scalars(select(Release).order_by(col(Release.created_at).desc()))).all()

    async def get_release(self, release_id: str) -> Release | None:
        return await self.session.get(Release, release_id)

    async def latest_release(self, kind: str) -> Release | None:
        query = (
            select(Release).where(col(Release.kind) == kind).order_by(col(Release.created_at).desc()).limit(1)
        )
        return (await self.session.scalars(query)).first()

    async def _refresh_statistics(self) -> None:
        """PostgreSQL plans the serving reads from the tables' statistics; without those of a new
        release (before autovacuum gets to its rows) it read every row of the release's time unit
        instead of going by the key: ~9 ms instead of 0.03 ms a read."""
        connection = await self.session.connection()
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql("ANALYZE published_cell, cube_cell")

    async def rows(
        self, release_id: str, geography: str, area_codes: Sequence[str], months: Sequence[int]
    ) -> Sequence[tuple[str, int, bytes]]:
        """Encoded cube rows for the given areas and months (absent rows are zeros)."""
        return await self._run(
            lambda pg: _reads(_CUBE, pg, [release_id, geography], None, area_codes, months)
        )

    async def published_rows(
        self,
        release_id: str,
        geography: str,
        area_codes: Sequence[str],
        time_units: Sequence[str],
        periods: Sequence[int] | None,
    ) -> Sequence[PublishedRow]:
        """Published atom rows (time unit, area, period, values, exact flags) of the time units'
        bundles, in one statement: at the given periods, or (None) at every period."""
        return await self._run(
            lambda pg: _published_reads(pg, release_id, geography, area_codes, time_units, periods)
        )

    async def _run(self, reads: Callable[[bool], list[_Read]]) -> list[Any]:
        """Serving statements (`reads` for PostgreSQL or not), by the driver itself, on the session's
        connection (same transaction)."""
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        postgres = connection.dialect.name == "postgresql"
        found: list[Any] = []
        for sql, args in reads(postgres):
            if postgres:
                try:
                    found += await _asyncpg_rows(connection.engine.pool, raw, sql, args)
                except DBAPIError as exc:
                    await connection.invalidate(exc.orig)  # the session's connection goes with it
                    raise
            else:
                driver: Any = raw.driver_connection
                found += [tuple(row) for row in await driver.execute_fetchall(sql, args)]
        return found


class ServingReads(Protocol):
    """Published rows read outside any session, as ReleaseRepository.published_rows reads them."""

    async def published_rows(
        self,
        release_id: str,
        geography: str,
        area_codes: Sequence[str],
        time_units: Sequence[str],
        periods: Sequence[int] | None,
    ) -> list[PublishedRow]: ...

    def close(self) -> None: ...


def serving_reads(engine: AsyncEngine, settings: Settings) -> ServingReads | None:
    """The reader for the engine's database: an SQLite file's, or PostgreSQL's (none in memory)."""
    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        return SqliteServingReads(sqlite_file)
    return None if settings.is_sqlite else PostgresServingReads(engine)


class ServingReadUnavailable(Exception):
    """A serving read that should go through the session instead."""


class SqliteServingReads:
    """Published rows read from an SQLite file by the standard library's driver, on the event loop.

    A published row never changes, so this reads outside any session. Through the session a read cost
    a pooled connection, aiosqlite's trip to its thread and the rollback that returns the connection
    (~390 us in process); a key lookup here takes ~18 us, less than that trip alone, so blocking the
    loop for it is cheaper than waiting for a thread. The connection autocommits, so every statement
    sees the newest publication, and is query-only. Where the file cannot be read at once (locked, or
    not there yet), the caller reads through the session instead (ServingReadUnavailable); so do
    reads of more than MAX_ROWS rows, or of more than MAX_SERIES whole series (a month series is ~60
    rows, ~110 us; an area's three time units ~80), which would hold the loop (and every other
    request) longer, where the session's read waits in its thread and can be cut short by the query
    time limit."""

    MAX_ROWS = 64
    MAX_SERIES = 6  # two areas' month, quarter and year series

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            if not self.path.exists():
                raise ServingReadUnavailable(f"no database file at {self.path}")
            # The loop must not wait on a lock: a busy file sends the read to the session.
            connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA query_only = ON")
            self._connection = connection
        return self._connection

    async def published_rows(
        self,
        release_id: str,
        geography: str,
        area_codes: Sequence[str],
        time_units: Sequence[str],
        periods: Sequence[int] | None,
    ) -> list[PublishedRow]:
        """As ReleaseRepository.published_rows."""
        series = len(time_units) * len(area_codes)
        too_many = series > self.MAX_SERIES if periods is None else series * len(periods) > self.MAX_ROWS
        if too_many:
            raise ServingReadUnavailable("too many rows to read on the loop")
        found: list[PublishedRow] = []
        try:
            connection = self._connect()
            for sql, args in _published_reads(False, release_id, geography, area_codes, time_units, periods):
                found += connection.execute(sql, args).fetchall()
        except sqlite3.Error as exc:  # the session's read gives the definitive answer, or error
            raise ServingReadUnavailable(str(exc)) from exc
        return found

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresServingReads:
    """Published rows read by asyncpg on a connection of the engine's pool, outside any session: a
    session's unit of work cost ~280 us around a key lookup in process, a pooled connection alone
    ~170 us. A connection found dropped is invalidated and reported as SQLAlchemy reports its own,
    so app.db.read_retrying reads again on a fresh one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def published_rows(
        self,
        release_id: str,
        geography: str,
        area_codes: Sequence[str],
        time_units: Sequence[str],
        periods: Sequence[int] | None,
    ) -> list[PublishedRow]:
        """As ReleaseRepository.published_rows."""
        found: list[PublishedRow] = []
        raw = await self.engine.raw_connection()
        try:
            for sql, args in _published_reads(True, release_id, geography, area_codes, time_units, periods):
                found += await _asyncpg_rows(self.engine.pool, raw, sql, args)
        finally:
            await greenlet_spawn(raw.close)  # returning it may have to talk to the driver
        return found

    def close(self) -> None:
        """The engine's pool is the app's to dispose of."""

"""The census and SQL connectors against real databases; the releases they publish through HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory
from app.main import create_app
from app.query.periods import parse_periods
from app.query.service import ObservationQuery, QueryService
from app.reference import read_snapshot
from app.services.census import publish_census
from app.services.ingest import IngestService
from auth.principal import Tier
from connectors.canonical import TABLES
from connectors.sql import SqlConnector
from tests.backends import POSTGRES_URL, _asyncpg_dsn, fresh_database
from tests.conftest import prepare_reference_database, serve, settings_for
from tests.registers import END_DATE, GEOGRAPHY, REFERENCE_DATE, small_register_frames

SECRET = "test-privacy-secret-not-for-production"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(tmp_path) as url:
        await prepare_reference_database(url)
        yield url


async def population(
    sessions: async_sessionmaker[AsyncSession], release: str, areas: tuple[str, ...], period: str
) -> list[float | None]:
    query = ObservationQuery("POP", GEOGRAPHY, areas, tuple(parse_periods(period)), release=release)
    async with sessions() as session:
        result = await QueryService(session, 10_000, await read_snapshot(session)).observations(
            query, Tier.INTERNAL
        )
    return [o.value for o in result.observations]


async def test_census_release_has_the_real_totals(database: str) -> None:
    engine = create_engine(settings_for(database))
    sessions = session_factory(engine)
    try:
        report = await publish_census(sessions)
        assert report["status"] == "published"
        assert report["unmatched_units"] > 0  # 2019 units merged before 2025 are reported
        assert any("merged since 2019" in line for line in report["unmatched"])
        assert await population(sessions, report["release_id"], ("24", "38"), "2019") == [
            1_803_950,
            3_640_128,
        ]
        again = await publish_census(sessions)
        assert again["status"] == "unchanged"
    finally:
        await engine.dispose()
    async with serve(create_app(settings_for(database))) as http:
        listed = (await http.get("/v1/releases")).json()
        assert [r["kind"] for r in listed["items"]] == ["census"]
        release = (await http.get(listed["items"][0]["href"])).json()
        assert release["period_start"] == release["period_end"] == "2019-03"
        assert release["synthetic"] is False
        assert release["areas"]["vn-2025-01"]["province"] == 63
        missing = await http.get("/v1/releases/nope")
        assert missing.status_code == 404
        assert missing.json()["code"] == "unknown-release"


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs PORTAL_TEST_DATABASE_URL (PostgreSQL)")
async def test_sql_connector_reads_a_register_database(database: str, tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    async with fresh_database(tmp_path) as source_url:
        connection = await asyncpg.connect(_asyncpg_dsn(source_url))
        try:
            frames = small_register_frames()
            for table, columns in TABLES.items():
                await connection.execute(f"CREATE TABLE {table} ({', '.join(f'{c} text' for c in columns)})")
                rows = [
                    tuple(None if v is None else str(v) for v in row) for row in frames[table].iter_rows()
                ]
                await connection.copy_records_to_table(table, records=rows, columns=list(columns))
            await connection.execute(
                "CREATE TABLE register_manifest (geography text, reference_date date, end_date date)"
            )
            await connection.execute(
                "INSERT INTO register_manifest VALUES ($1, $2, $3)", GEOGRAPHY, REFERENCE_DATE, END_DATE
            )
        finally:
            await connection.close()

        engine = create_engine(settings_for(database))
        sessions = session_factory(engine)
        try:
            report = await IngestService(sessions, SECRET).ingest(SqlConnector(source_url, batch_rows=3))
            assert report.status == "published", report.as_dict()
            assert report.rows_read == {"households": 4, "persons": 10, "events": 11}
            assert report.release_id is not None
            assert await population(sessions, report.release_id, ("24", "213"), "2024") == [11, 8]
        finally:
            await engine.dispose()


async def test_sql_connector_reports_an_unreachable_database(database: str) -> None:
    engine = create_engine(settings_for(database))
    try:
        connector = SqlConnector("postgresql://nobody:secret@127.0.0.1:1/none")
        report = await IngestService(session_factory(engine), SECRET).ingest(connector)
    finally:
        await engine.dispose()
    assert report.status == "failed"
    assert "cannot connect" in report.message
    assert "secret" not in report.message
    assert "secret" not in report.source


async def test_releases_list_is_empty_before_any_load(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/releases")).json()
    assert body == {"items": [], "total": 0}


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs PORTAL_TEST_DATABASE_URL (PostgreSQL)")
async def test_a_publish_leaves_postgresql_planning_the_serving_read_by_the_key(demo_database: str) -> None:
    """Without statistics of the new rows, the planner filtered a whole time unit of the release."""
    connection = await asyncpg.connect(_asyncpg_dsn(demo_database))
    try:
        analyzed = await connection.fetchval(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'published_cell'"
        )
        assert analyzed is not None
        release = await connection.fetchval("SELECT id FROM release WHERE kind = 'register'")
        plan = "\n".join(
            row[0]
            for row in await connection.fetch(
                "EXPLAIN SELECT area_code FROM published_cell WHERE release_id = $1 AND geography = $2 "
                "AND time_unit = ANY($3::varchar[]) AND area_code = ANY($4::varchar[]) "
                "AND period = ANY($5::int[])",
                release,
                "vn-2025-01",
                ["month", "quarter"],
                ["24"],
                [24299],
            )
        )
        series_plan = "\n".join(  # the read ahead of an area's whole series (app/query/rows.py)
            row[0]
            for row in await connection.fetch(
                "EXPLAIN SELECT area_code FROM published_cell WHERE release_id = $1 AND geography = $2 "
                "AND time_unit = ANY($3::varchar[]) AND area_code = ANY($4::varchar[])",
                release,
                "vn-2025-01",
                ["month", "quarter"],
                ["24"],
            )
        )
    finally:
        await connection.close()
    for explained in (plan, series_plan):
        index_condition = next(line for line in explained.splitlines() if "Index Cond" in line)
        assert "area_code" in index_condition, explained

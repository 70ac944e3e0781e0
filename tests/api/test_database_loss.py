"""Connections are not pinged before each use (settings.db_pre_ping): when the database drops them
(a restart, a failover), a data read runs once more on a fresh connection, and any other request gets
a 503 problem to retry instead of a 500; the requests after it are answered."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import pytest

from app.main import create_app
from tests.backends import POSTGRES_URL, _asyncpg_dsn
from tests.conftest import serve, settings_for

pytestmark = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PORTAL_TEST_DATABASE_URL (PostgreSQL)")

# No response cache at either level (in process or Redis): every request below reads the database.
UNCACHED = {"cache_max_bytes": 0, "redis_url": None}


async def drop_connections(database: str) -> int:
    """What a server restart does to the portal's pooled connections."""
    admin = await asyncpg.connect(_asyncpg_dsn(database))
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await admin.close()


# The epoch is checked hourly here, so the request's own read is the first to meet a dropped connection.
async def test_a_data_read_survives_its_connection_being_dropped(demo_database: str) -> None:
    app = create_app(settings_for(demo_database, row_cache_max_bytes=0, cache_epoch_seconds=3600, **UNCACHED))
    async with serve(app) as http:
        # Concurrent reads leave several connections in the pool; a restart drops them all.
        periods = ["2024", "2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
        first = await asyncio.gather(
            *(http.get("/v1/data/POP", params={"area": "24", "period": p}) for p in periods)
        )
        assert [r.status_code for r in first] == [200] * len(periods), first[0].text
        assert await drop_connections(demo_database) >= 2
        for period, before in zip(periods, first, strict=True):
            again = await http.get("/v1/data/POP", params={"area": "24", "period": period})
            assert again.status_code == 200, again.text
            assert again.json()["items"] == before.json()["items"]


async def test_other_requests_get_a_503_to_retry_then_answers(demo_database: str) -> None:
    app = create_app(settings_for(demo_database, cache_epoch_seconds=3600, **UNCACHED))
    async with serve(app) as http:
        assert (await http.get("/v1/releases")).status_code == 200
        assert await drop_connections(demo_database) >= 1
        lost = await http.get("/v1/releases")
        assert lost.status_code == 503, lost.text
        assert lost.headers["content-type"] == "application/problem+json"
        assert lost.headers["retry-after"] == "1"
        assert lost.json()["code"] == "database-unavailable"
        after = await http.get("/v1/releases")
        assert after.status_code == 200, after.text


async def test_the_publication_check_survives_its_connection_being_dropped(demo_database: str) -> None:
    app = create_app(settings_for(demo_database, cache_epoch_seconds=0, **UNCACHED))
    async with serve(app) as http:
        assert (await http.get("/v1/releases")).status_code == 200
        assert await drop_connections(demo_database) >= 1
        after = await http.get("/v1/releases")  # the epoch is read first, and read again
        assert after.status_code == 200, after.text
        assert after.json()["total"] == 2

"""Fixtures: the real ASGI app over a real database (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.db import create_engine, session_factory, transaction, upgrade_database
from app.main import create_app
from app.settings import Settings
from connectors.reference import load_reference_data
from tests.backends import REDIS_URL, fresh_database

# Other test runs share the Redis server: every key of this run starts with its own prefix.
REDIS_KEY_PREFIX = f"portal-test-{uuid.uuid4().hex[:10]}"
# Limits high enough that the suite never meets them; tests of the limits set their own.
GENEROUS_LIMIT = "100000/minute"

ClientFactory = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


def settings_for(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "privacy_secret": "test-privacy-secret-not-for-production",
        "signing_secret": "test-signing-secret-not-for-production",
        "redis_key_prefix": REDIS_KEY_PREFIX,
        "rate_limit_public": GENEROUS_LIMIT,
        "rate_limit_department": GENEROUS_LIMIT,
        "rate_limit_internal": GENEROUS_LIMIT,
        "rate_limit_oauth": GENEROUS_LIMIT,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def prepare_reference_database(database_url: str) -> None:
    engine = create_engine(settings_for(database_url))
    try:
        await upgrade_database(engine)
        async with transaction(session_factory(engine)) as session:
            await load_reference_data(session)
    finally:
        await engine.dispose()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over the app's ASGI interface, with its lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
            yield client


@pytest.fixture(scope="session")
async def reference_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database with migrations and reference data, shared by the read-only tests of a run."""
    async with fresh_database(tmp_path_factory.mktemp("db")) as url:
        await prepare_reference_database(url)
        yield url


@pytest.fixture
async def empty_database(tmp_path: Path) -> AsyncIterator[str]:
    """A new database with nothing in it, for tests that write."""
    async with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
async def client(reference_database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(reference_database))) as http:
        yield http


DEMO_SCALE = 0.004  # about 22,000 synthetic persons: every indicator has counts, the suite stays quick


@pytest.fixture(scope="session")
async def demo_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Reference data, the synthetic demo release and the 2019 census release: shared, read-only."""
    from app.cli import run

    async with fresh_database(tmp_path_factory.mktemp("demo")) as url:
        await prepare_reference_database(url)
        settings = settings_for(url)
        assert await run(["ingest", "census2019"], settings) == 0
        assert await run(["demo", "--scale", str(DEMO_SCALE), "--seed", "7"], settings) == 0
        yield url


@pytest.fixture(scope="session")
async def demo_client(demo_database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(demo_database, rate_limit_public="100000/minute"))) as http:
        yield http

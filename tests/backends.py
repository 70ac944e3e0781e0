"""Test databases: a fresh SQLite file, or a fresh PostgreSQL database when PORTAL_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("PORTAL_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL") or None


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(directory: Path) -> AsyncIterator[str]:
    """A new, empty database for the configured backend; dropped afterwards."""
    if POSTGRES_URL is None:
        yield f"sqlite+aiosqlite:///{directory / f'portal-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"portal_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield (
            make_url(POSTGRES_URL)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

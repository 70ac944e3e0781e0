"""Database engines, sessions and migrations (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_engine(settings: Settings, statement_timeout: float | None = None) -> AsyncEngine:
    """An engine for the configured database; SQLite gets WAL and foreign keys, as production expects.

    The serving app passes `statement_timeout` (seconds), which PostgreSQL enforces per statement;
    loads and migrations run without one."""
    url = settings.database_url
    kwargs: dict[str, Any] = {
        "pool_pre_ping": not settings.is_sqlite,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
    }
    if statement_timeout is not None and not settings.is_sqlite:
        kwargs["connect_args"] = {
            "server_settings": {"statement_timeout": str(int(statement_timeout * 1000))}
        }
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back on any error."""
    async with sessions() as session, session.begin():
        yield session


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


async def upgrade_database(engine: AsyncEngine) -> None:
    """Apply pending migrations (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)

"""Database engines, sessions and migrations (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn

from app.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")

# What asyncpg raises on a connection the server has dropped (shut down, terminated, socket closed).
# A connection terminated while idle can also fail its next statement with InternalClientError
# ("another operation is in progress"), which SQLAlchemy does not count as a disconnect by itself.
CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


def create_engine(settings: Settings, statement_timeout: float | None = None) -> AsyncEngine:
    """An engine for the configured database; SQLite gets WAL and foreign keys, as production expects.

    The serving app passes `statement_timeout` (seconds), which PostgreSQL enforces per statement;
    loads and migrations run without one."""
    url = settings.database_url
    kwargs: dict[str, Any] = {
        "pool_pre_ping": settings.db_pre_ping and not settings.is_sqlite,
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
    else:
        event.listen(engine.sync_engine, "handle_error", _count_lost_connections)
    return engine


def _count_lost_connections(context: ExceptionContext) -> None:
    """Every way asyncpg reports a dropped connection invalidates it (and the pool's older ones)."""
    error: BaseException | None = context.original_exception
    while error is not None and not isinstance(error, CONNECTION_LOST):
        error = error.__cause__
    if error is not None:
        context.is_disconnect = True


async def connection_lost(pool: Pool, connection: PoolProxiedConnection, exc: BaseException) -> None:
    """For a driver call SQLAlchemy did not see, what it does when its own statement finds the
    connection dropped: this connection is closed, and every other one the pool opened before it is
    replaced at its next checkout (a restart or failover dropped them all)."""
    await greenlet_spawn(pool._invalidate, connection, exc)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PortalSession(AsyncSession):
    """An AsyncSession whose close is free when it was never used. A data request usually reads no
    more than its published rows, outside any session (app.repositories.releases.serving_reads), and
    closing its unused session still took a task of its own (so that a cancellation cannot cut the
    close short) and a trip through a greenlet: ~15% of the request in process."""

    def _used(self) -> bool:
        used = self.sync_session
        return used.in_transaction() or bool(len(used.identity_map)) or bool(used.new)

    async def close(self) -> None:
        if self._used():
            await super().close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if self._used():  # else there is nothing a cancellation could leave half done
            await super().__aexit__(type_, value, traceback)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=PortalSession, expire_on_commit=False)


async def read_retrying(
    sessions: async_sessionmaker[AsyncSession], read: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """A read-only unit of work, run once more on a fresh connection when the first one's turned out
    dead: connections are not pinged before use (settings.db_pre_ping), and a read can be repeated."""
    try:
        async with sessions() as session:
            return await read(session)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with sessions() as session:
        return await read(session)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back on any error."""
    async with sessions() as session, session.begin():
        yield session


# The time (event loop clock) by which the current request's reads of the database must be done.
_deadline: ContextVar[float | None] = ContextVar("portal_read_deadline", default=None)


class Deadline:
    """`with Deadline(seconds):` the database waits inside (`waiting()`) end with TimeoutError once
    `seconds` have passed since the block began.

    Only a wait can be cut short: the event loop runs nothing else while a query adds up rows held in
    memory, so a timeout around the whole request ends it at the same points. Most data requests
    wait on nothing (their rows are held, app/query/rows.py), and arming a timer for each of them
    was ~2.5% of an uncached request."""

    __slots__ = ("_token", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        self._token: Token[float | None] = _deadline.set(asyncio.get_running_loop().time() + self.seconds)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        _deadline.reset(self._token)


def waiting() -> asyncio.Timeout:
    """A timeout at the current deadline (none outside a `Deadline`), to put around a database wait."""
    return asyncio.timeout_at(_deadline.get())


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

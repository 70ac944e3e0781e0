"""Sessions (app.db): closing one that was never used costs nothing and leaves nothing behind;
closing a used one still returns its connection and forgets its objects. A request's deadline ends
the database waits it holds, and only those."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from app.db import Deadline, PortalSession, create_engine, session_factory, waiting
from app.models import Department
from tests.conftest import settings_for


async def test_sessions_close_whether_used_or_not(reference_database: str) -> None:
    engine = create_engine(settings_for(reference_database))
    sessions = session_factory(engine)
    try:
        async with sessions() as unused:
            assert isinstance(unused, PortalSession)
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        async with sessions() as reading:
            assert (await reading.execute(text("SELECT 1"))).scalar() == 1
            assert reading.in_transaction()
            assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        assert not reading.in_transaction()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        async with sessions() as adding:
            added = Department(code="test-close", name="Never written", created_at=datetime.now(UTC))
            adding.add(added)
            assert added in adding.new
        assert added not in adding.new  # not flushed: forgotten, and nothing was written
        async with sessions() as checking:
            found = await checking.execute(select(Department).where(col(Department.code) == "test-close"))
            assert found.first() is None
    finally:
        await engine.dispose()


async def test_a_deadline_ends_the_database_waits_within_it() -> None:
    started = time.monotonic()
    with Deadline(0.05):
        with pytest.raises(TimeoutError):
            async with waiting():
                await asyncio.sleep(5)
        assert time.monotonic() - started < 1
        with pytest.raises(TimeoutError):  # past the deadline, the next wait ends at once
            async with waiting():
                await asyncio.sleep(5)
    async with waiting():  # outside a deadline a wait is not limited
        await asyncio.sleep(0.1)


async def test_deadlines_are_per_task() -> None:
    async def wait(seconds: float, limit: float) -> str:
        with Deadline(limit):
            try:
                async with waiting():
                    await asyncio.sleep(seconds)
            except TimeoutError:
                return "timed out"
        return "done"

    assert list(await asyncio.gather(wait(0.2, 0.05), wait(0.1, 5))) == ["timed out", "done"]

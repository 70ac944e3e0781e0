"""Sessions (app.db): closing one that was never used costs nothing and leaves nothing behind;
closing a used one still returns its connection and forgets its objects."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import col, select

from app.db import PortalSession, create_engine, session_factory
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

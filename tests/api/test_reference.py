"""The in-process reference snapshot agrees with the store, and follows it when a release is published."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from app.db import create_engine, session_factory, transaction
from app.models import Release
from app.reference import ReferenceStore
from app.repositories.geography import GeographyRepository
from tests.conftest import settings_for


async def test_snapshot_answers_what_the_repositories_answer(reference_database: str) -> None:
    engine = create_engine(settings_for(reference_database))
    try:
        sessions = session_factory(engine)
        snapshot = await ReferenceStore(sessions, 60).current()
        async with sessions() as session:
            repository = GeographyRepository(session)
            for geography, code, level in (
                ("vn-2025-01", "24", "commune"),  # Bắc Giang: communes two levels down
                ("vn-2025-01", "24", "district"),
                ("vn-2025-07", "24", "commune"),  # new Bắc Ninh: communes directly below
                ("vn-2025-01", "213", "commune"),
            ):
                expected = await repository.descendant_codes(geography, code, level)
                assert expected, (geography, code, level)
                assert snapshot.descendant_codes(geography, code, level) == expected
            children = await repository.children_of("vn-2025-01", ["24", "38"])
            assert {
                code: [a.code for a in found]
                for code, found in snapshot.children_of("vn-2025-01", ["24", "38"]).items()
            } == {code: [a.code for a in found] for code, found in children.items()}
            area = await repository.get_area("vn-2025-07", "38")
            assert area is not None
            cached = snapshot.get_area("vn-2025-07", "38")
            assert cached is not None
            assert (cached.name, cached.level) == (area.name, area.level)
        assert snapshot.get_indicator("cbr") is not None
        assert snapshot.get_indicator("NOPE") is None
        assert [g.id for g in snapshot.geographies] == ["vn-2025-01", "vn-2025-07"]
    finally:
        await engine.dispose()


async def test_concurrent_requests_share_one_read_and_a_new_release_is_seen_after_the_period(
    empty_database: str,
) -> None:
    from tests.conftest import prepare_reference_database

    await prepare_reference_database(empty_database)
    engine = create_engine(settings_for(empty_database))
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        sessions = session_factory(engine)
        store = ReferenceStore(sessions, refresh_seconds=60)
        snapshots = await asyncio.gather(*(store.current() for _ in range(16)))
        assert len({id(s) for s in snapshots}) == 1  # one read, shared
        first = statements
        assert first <= 8  # the epoch and the tables, once
        assert snapshots[0].latest_release("register") is None
        await store.current()
        assert statements == first  # within the period: not asked again

        async with transaction(sessions) as session:
            session.add(
                Release(
                    id="register-test",
                    kind="register",
                    created_at=datetime.now(UTC) + timedelta(seconds=1),
                    synthetic=True,
                    first_month=2023 * 12,
                    last_month=2024 * 12 + 11,
                    geographies="vn-2025-01",
                    sources="[]",
                    row_counts="{}",
                    input_hash="x" * 64,
                )
            )
        assert await store.current() is snapshots[0]  # not yet: the period has not passed
        store.refresh_seconds = 0
        snapshot = await store.current()
        latest = snapshot.latest_release("register")
        assert latest is not None
        assert latest.id == "register-test"
        assert snapshot is not snapshots[0]
    finally:
        await engine.dispose()

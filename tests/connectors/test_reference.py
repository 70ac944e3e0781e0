"""Loading the reference data: idempotent, complete, and honest about rows that do not reconcile."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from app.db import create_engine, session_factory, transaction, upgrade_database
from app.models import Area, AreaLink, ReconciliationIssue
from connectors.reference import link_kind, load_reference_data
from tests.conftest import settings_for


async def test_second_load_changes_nothing(empty_database: str) -> None:
    engine = create_engine(settings_for(empty_database))
    sessions = session_factory(engine)
    try:
        await upgrade_database(engine)
        async with transaction(sessions) as session:
            first = await load_reference_data(session)
        async with transaction(sessions) as session:
            second = await load_reference_data(session)
        async with sessions() as session:
            areas = await session.scalar(select(func.count()).select_from(Area))
            links = await session.scalar(select(func.count()).select_from(AreaLink))
            issues = await session.scalar(select(func.count()).select_from(ReconciliationIssue))
            unreconciled = await session.scalar(
                select(func.count()).select_from(AreaLink).where(col(AreaLink.reconciled).is_(False))
            )
    finally:
        await engine.dispose()
    assert first.changed
    assert first.tables["area:vn-2025-01"].inserted == 63 + 696 + 10051
    assert first.tables["area:vn-2025-07"].inserted == 34 + 3321
    assert not second.changed, second.as_dict()["tables"]
    assert areas == 63 + 696 + 10051 + 34 + 3321
    # Rows of the official table that name codes missing from the code lists are kept and reported.
    assert unreconciled
    assert unreconciled > 0
    assert issues == len(first.unreconciled["crosswalk"]) > 0
    assert links is not None
    assert links > 10000
    assert second.unreconciled == first.unreconciled


def test_change_notes_are_classified_despite_typos() -> None:
    assert link_kind("Nhập toàn bộ") == "whole"
    assert link_kind("Nhập một phần") == "partial"
    assert link_kind("Nhâp một phần diện tích") == "partial_area"
    assert link_kind("Nhập một phần  diện tích") == "partial_area"
    assert link_kind("Nhập một phần diện tích, toàn bộ dân số") == "partial_area_whole_population"
    assert link_kind("Giữ nguyên") == "unchanged"

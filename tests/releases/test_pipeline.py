"""The whole path on a hand-made register: validation, build, publish, and exact indicator values."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory
from app.query.periods import parse_periods
from app.query.service import ObservationQuery, QueryService, parse_age_ranges
from app.reference import read_snapshot
from app.services.ingest import IngestReport, IngestService
from auth.principal import Tier
from connectors.base import PreparedConnector
from tests.conftest import prepare_reference_database, settings_for
from tests.registers import COMMUNE_C, WARD_A, WARD_B, small_register

SECRET = "test-privacy-secret-not-for-production"


@pytest.fixture(scope="module")
async def published(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], IngestReport]]:
    from tests.backends import fresh_database

    async with fresh_database(tmp_path_factory.mktemp("pipeline")) as url:
        await prepare_reference_database(url)
        engine = create_engine(settings_for(url))
        sessions = session_factory(engine)
        report = await IngestService(sessions, SECRET).ingest(
            PreparedConnector("test", "small register", small_register())
        )
        yield sessions, report
        await engine.dispose()


async def value(
    sessions: async_sessionmaker[AsyncSession],
    indicator: str,
    area: str,
    period: str,
    geography: str = "vn-2025-01",
    **extra: str,
) -> list[tuple[dict[str, str], float | None, float | None, float | None]]:
    query = ObservationQuery(
        indicator=indicator,
        geography=geography,
        areas=(area,),
        periods=tuple(parse_periods(period)),
        sex=extra.get("sex"),
        age=parse_age_ranges(extra.get("age", "")),
        by=tuple(b for b in extra.get("by", "").split(",") if b),
    )
    async with sessions() as session:
        result = await QueryService(session, 10_000, await read_snapshot(session)).observations(
            query, Tier.INTERNAL
        )
    return [(o.breakdown, o.value, o.numerator, o.denominator) for o in result.observations]


async def test_publishes_once(published: tuple[async_sessionmaker[AsyncSession], IngestReport]) -> None:
    sessions, report = published
    assert report.status == "published", report.as_dict()
    assert report.rejected == 0
    again = await IngestService(sessions, SECRET).ingest(
        PreparedConnector("test", "small register", small_register())
    )
    assert again.status == "unchanged"
    assert again.release_id == report.release_id


async def test_population_at_every_level(
    published: tuple[async_sessionmaker[AsyncSession], IngestReport],
) -> None:
    sessions, _ = published
    assert (await value(sessions, "POP", WARD_A, "2024"))[0][1] == 5
    assert (await value(sessions, "POP", WARD_B, "2024"))[0][1] == 3
    assert (await value(sessions, "POP", COMMUNE_C, "2024"))[0][1] == 3
    assert (await value(sessions, "POP", "213", "2024"))[0][1] == 8
    assert (await value(sessions, "POP", "24", "2024"))[0][1] == 11
    assert (await value(sessions, "POP", "24", "2024-01"))[0][1] == 10
    by_sex = await value(sessions, "POP", "24", "2024", by="sex")
    assert [(b["sex"], v) for b, v, _, _ in by_sex] == [("male", 5), ("female", 6)]


async def test_flows_and_migration_cross_only_their_boundary(
    published: tuple[async_sessionmaker[AsyncSession], IngestReport],
) -> None:
    sessions, _ = published
    assert (await value(sessions, "BIRTHS", "24", "2024"))[0][1] == 2
    assert (await value(sessions, "DEATHS", "24", "2024", by="age5", age="80-84"))[0][1] == 1
    assert (await value(sessions, "IN_MIGRANTS", WARD_A, "2024"))[0][1] == 1
    assert (await value(sessions, "IN_MIGRANTS", "213", "2024"))[0][1] == 2
    assert (await value(sessions, "IN_MIGRANTS", "24", "2024"))[0][1] == 1  # the move C -> A stays inside
    assert (await value(sessions, "OUT_MIGRANTS", "24", "2024"))[0][1] == 1
    assert (await value(sessions, "MAR", WARD_B, "2024"))[0][1] == 1
    assert (await value(sessions, "DIV", COMMUNE_C, "2024"))[0][1] == 1
    assert (await value(sessions, "BIRTHS", "24", "2024-Q1"))[0][1] == 1


async def test_rates_follow_their_formulas(
    published: tuple[async_sessionmaker[AsyncSession], IngestReport],
) -> None:
    sessions, _ = published
    average = (10 / 2 + 11 / 2 + (10 + 10 + 11 + 11 + 11 + 10 + 10 + 10 + 10 + 9 + 10)) / 12
    [(_, cbr, births, population)] = await value(sessions, "CBR", "24", "2024")
    assert births == 2
    assert population == pytest.approx(average)
    assert cbr == pytest.approx(2 / average * 1000)
    [(_, srb, _, _)] = await value(sessions, "SRB", "24", "2024")
    assert srb == 100
    [(_, ahs, _, _)] = await value(sessions, "AHS", "24", "2024")
    assert ahs == pytest.approx(11 / 4)
    [(_, third, _, _)] = await value(sessions, "BIRTH3", "24", "2024")
    assert third == 50
    [(_, imr, _, _)] = await value(sessions, "IMR", "24", "2024")
    assert imr == 0


async def test_contraceptive_prevalence_over_months(
    published: tuple[async_sessionmaker[AsyncSession], IngestReport],
) -> None:
    sessions, _ = published
    january = await value(sessions, "CPR", "24", "2024-01")
    assert january[0][1:] == (100, 2, 2)
    march = await value(sessions, "CPR", "24", "2024-03")
    assert march[0][1:] == (50, 1, 2)
    december = await value(sessions, "CPR", "24", "2024-12")
    assert december[0][1:] == (0, 0, 2)  # P2 stopped; P7 divorced; P6 married in May, no method


async def test_urban_share_counts_wards(
    published: tuple[async_sessionmaker[AsyncSession], IngestReport],
) -> None:
    sessions, _ = published
    [(_, urb, urban, total)] = await value(sessions, "URB", "24", "2024")
    assert (urban, total) == (8, 11)
    assert urb == pytest.approx(800 / 11)


async def test_reexpressed_in_the_new_geography(
    published: tuple[async_sessionmaker[AsyncSession], IngestReport],
) -> None:
    sessions, _ = published
    # Both wards of Bắc Giang city became Phường Bắc Giang (07210) on 1 July 2025.
    assert (await value(sessions, "POP", "07210", "2024", geography="vn-2025-07"))[0][1] == 8
    from app.errors import Unprocessable

    with pytest.raises(Unprocessable, match="only part"):
        await value(sessions, "POP", "24", "2024", geography="vn-2025-07")

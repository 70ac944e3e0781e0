"""The `portal` command as the population office uses it: demo export, then ingest of the CSVs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import run
from app.db import create_engine, session_factory
from app.query.periods import parse_periods
from app.query.service import ObservationQuery, QueryService
from app.reference import read_snapshot
from app.repositories.releases import ReleaseRepository
from auth.principal import Tier
from tests.backends import fresh_database
from tests.conftest import settings_for


async def indicator(
    sessions: async_sessionmaker[AsyncSession], code: str, area: str, period: str
) -> float | None:
    query = ObservationQuery(code, "vn-2025-01", (area,), tuple(parse_periods(period)))
    async with sessions() as session:
        return (
            (
                await QueryService(session, 10_000, await read_snapshot(session)).observations(
                    query, Tier.INTERNAL
                )
            )
            .observations[0]
            .value
        )


def province_communes(province: str) -> set[str]:
    units = pl.read_csv(Path("connectors/data/geography/units_vn-2025-01.csv"), infer_schema=False)
    districts = set(
        units.filter((pl.col("level") == "district") & (pl.col("parent_code") == province))["code"]
    )
    return set(units.filter((pl.col("level") == "commune") & pl.col("parent_code").is_in(districts))["code"])


def direct_counts(directory: Path, province: str, first: date, last: date) -> dict[str, int]:
    """Population at the end of `last`'s month and births and deaths in [first, last], from the CSVs alone."""
    communes = province_communes(province)
    persons = pl.read_csv(directory / "persons.csv", infer_schema=False)
    events = pl.read_csv(directory / "events.csv", infer_schema=False).with_columns(
        pl.col("event_date").str.to_date()
    )
    inside = pl.col("area_code").is_in(communes)
    window = pl.col("event_date") <= last
    in_window = window & (pl.col("event_date") >= first)

    def count(frame: pl.DataFrame) -> int:
        return frame.height

    # A province's population changes by births, deaths and moves that cross its boundary.
    from_outside = pl.col("origin_area_code").is_null() | ~pl.col("origin_area_code").is_in(communes)
    to_outside = pl.col("destination_area_code").is_null() | ~pl.col("destination_area_code").is_in(communes)
    entered = events.filter(
        window
        & inside
        & ((pl.col("event_type") == "birth") | ((pl.col("event_type") == "move_in") & from_outside))
    )
    left = events.filter(
        window
        & inside
        & ((pl.col("event_type") == "death") | ((pl.col("event_type") == "move_out") & to_outside))
    )
    return {
        "population": count(persons.filter(inside)) + count(entered) - count(left),
        "births": count(events.filter(in_window & inside & (pl.col("event_type") == "birth"))),
        "deaths": count(events.filter(in_window & inside & (pl.col("event_type") == "death"))),
    }


@pytest.mark.slow
async def test_demo_export_then_ingest_agrees_with_the_csvs(tmp_path: Path) -> None:
    export = tmp_path / "export"
    async with fresh_database(tmp_path) as first_url, fresh_database(tmp_path) as second_url:
        assert (
            await run(
                ["demo", "--scale", "0.004", "--seed", "7", "--export", str(export)], settings_for(first_url)
            )
            == 0
        )
        assert (export / "manifest.json").read_text(encoding="utf-8").count('"synthetic": true') == 1
        assert await run(["ingest", "csv", str(export)], settings_for(second_url)) == 0
        for url in (first_url, second_url):
            engine = create_engine(settings_for(url))
            sessions = session_factory(engine)
            try:
                async with sessions() as session:
                    release = await ReleaseRepository(session).latest_release("register")
                assert release is not None
                assert release.synthetic
                for province in ("24", "38"):
                    truth = direct_counts(export, province, date(2024, 1, 1), date(2024, 12, 31))
                    assert await indicator(sessions, "POP", province, "2024") == truth["population"]
                    assert await indicator(sessions, "BIRTHS", province, "2024") == truth["births"]
                    assert await indicator(sessions, "DEATHS", province, "2024") == truth["deaths"]
            finally:
                await engine.dispose()


async def test_census_command_and_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with fresh_database(tmp_path) as url:
        assert await run(["ingest", "census2019"], settings_for(url)) == 0
        assert '"status": "published"' in capsys.readouterr().out
        assert await run(["ingest", "csv", str(tmp_path / "nowhere")], settings_for(url)) == 1
        assert "manifest.json is missing" in capsys.readouterr().out

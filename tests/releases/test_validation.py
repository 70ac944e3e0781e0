"""A bad register is rejected row by row with reasons, and the served release does not change."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory
from app.repositories.releases import ReleaseRepository
from app.services.ingest import IngestService
from connectors.csv_dir import CsvDirectoryConnector
from tests.backends import fresh_database
from tests.conftest import prepare_reference_database, settings_for
from tests.registers import write_small_register

SECRET = "test-privacy-secret-not-for-production"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with fresh_database(tmp_path) as url:
        await prepare_reference_database(url)
        engine = create_engine(settings_for(url))
        yield session_factory(engine)
        await engine.dispose()


async def current_release(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessions() as session:
        release = await ReleaseRepository(session).latest_release("register")
    return release.id if release else None


def append_rows(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")


async def test_csv_directory_publishes_what_the_records_say(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    directory = write_small_register(tmp_path / "register")
    report = await IngestService(sessions, SECRET).ingest(CsvDirectoryConnector(directory))
    assert report.status == "published", report.as_dict()
    assert report.rows_read == {"households": 4, "persons": 10, "events": 11}
    again = await IngestService(sessions, SECRET).ingest(CsvDirectoryConnector(directory))
    assert again.status == "unchanged"
    assert again.release_id == report.release_id


async def test_bad_rows_are_rejected_with_reasons(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    good = write_small_register(tmp_path / "good")
    published = await IngestService(sessions, SECRET).ingest(CsvDirectoryConnector(good))
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    append_rows(
        bad / "persons.csv",
        "P11,H1,3,1990-01-01,07201,vn-2025-01,permanent,single,",  # sex 3
        "P12,H1,1,1990-13-01,07201,vn-2025-01,permanent,single,",  # month 13
        "P13,H1,1,1990-01-01,99999,vn-2025-01,permanent,single,",  # unknown area
    )
    append_rows(
        bad / "events.csv",
        "E20,death,2024-05-05,GHOST,07201,vn-2025-01,,,,,,,,,,",  # never born
        "E1,death,2024-05-05,P1,07201,vn-2025-01,,,,,,,,,,",  # duplicate event id
        "E21,death,2026-01-01,P1,07201,vn-2025-01,,,,,,,,,,",  # after the register's end
        "E22,death,2024-07-01,P4,07201,vn-2025-01,,,,,,,,,,",  # P4 already died in June
        "E23,birth,2024-04-04,N9,07201,vn-2025-01,H1,1,2024-04-04,P2,1992-08-20,0,,,,",  # birth order 0
    )
    report = await IngestService(sessions, SECRET).ingest(CsvDirectoryConnector(bad))
    assert report.status == "failed"
    assert "nothing published" in report.message
    reasons = {(r["file"], r["line"]): r["reason"] for r in report.first_rejects}
    assert reasons[("persons.csv", 12)] == "sex must be 1 (male) or 2 (female)"
    assert reasons[("persons.csv", 13)].startswith("cannot parse: birth_date='1990-13-01'")
    assert reasons[("persons.csv", 14)] == "unknown area_code for this geography"
    assert (
        reasons[("events.csv", 13)] == "person never entered the register (no snapshot row, birth or arrival)"
    )
    assert reasons[("events.csv", 14)] == "duplicate event_id"
    assert reasons[("events.csv", 15)].startswith("event_date outside the register's range")
    assert reasons[("events.csv", 16)] == "the person already died"
    assert reasons[("events.csv", 17)] == "a birth needs birth_order 1 or more"
    assert report.rejected == 8
    assert await current_release(sessions) == published.release_id
    async with sessions() as session:
        stored = await ReleaseRepository(session).rejects(report.load_id, 100)
    assert len(stored) == 8

    accepted = await IngestService(sessions, SECRET).ingest(CsvDirectoryConnector(bad), allow_rejects=True)
    assert accepted.status == "unchanged"  # the valid rows are exactly the good register


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda d: (d / "events.csv").write_text("id,kind\n1,birth\n", encoding="utf-8"),
            "header is 'id,kind'",
        ),
        (lambda d: (d / "persons.csv").write_bytes("person_id,hộ\n".encode("utf-16")), "not UTF-8"),
        (lambda d: (d / "households.csv").unlink(), "households.csv is missing"),
        (lambda d: (d / "manifest.json").write_text("{}", encoding="utf-8"), "manifest.json is not valid"),
    ],
)
async def test_unreadable_files_fail_the_whole_load(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, damage: object, message: str
) -> None:
    directory = write_small_register(tmp_path / "register")
    damage(directory)  # type: ignore[operator]
    report = await IngestService(sessions, SECRET).ingest(CsvDirectoryConnector(directory))
    assert report.status == "failed"
    assert message in report.message
    assert await current_release(sessions) is None


def test_exported_csv_reads_back_identically(tmp_path: Path) -> None:
    from tests.registers import small_register_frames

    directory = write_small_register(tmp_path / "register")
    frames = small_register_frames()
    persons = pl.read_csv(directory / "persons.csv", infer_schema=False)
    assert persons.height == frames["persons"].height
    assert persons["birth_date"].to_list()[0] == "1990-05-10"

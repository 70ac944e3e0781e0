"""Small hand-made registers whose every count is known, and helpers to load them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import polars as pl

from app.releases.validation import SourceRegister, source_from_frames
from connectors.canonical import EVENT_COLUMNS, HOUSEHOLD_COLUMNS, PERSON_COLUMNS, column_type
from connectors.csv_dir import write_register

# Bắc Giang (24), vn-2025-01: two wards of Bắc Giang city (district 213) and a commune of district 215.
WARD_A, WARD_B, COMMUNE_C = "07201", "07207", "07243"
GEOGRAPHY = "vn-2025-01"
REFERENCE_DATE = date(2023, 12, 31)
END_DATE = date(2024, 12, 31)


def frame(columns: tuple[str, ...], rows: Sequence[Mapping[str, object]]) -> pl.DataFrame:
    schema = {c: getattr(pl, column_type(c)) for c in columns}
    return pl.DataFrame([{c: row.get(c) for c in columns} for row in rows], schema=schema, orient="row")


def _person(
    pid: str,
    household: str,
    sex: int,
    born: str,
    area: str,
    marital: str = "single",
    method: str | None = None,
) -> dict[str, object]:
    return {
        "person_id": pid,
        "household_id": household,
        "sex": sex,
        "birth_date": date.fromisoformat(born),
        "area_code": area,
        "geography": GEOGRAPHY,
        "residence": "permanent",
        "marital_status": marital,
        "contraceptive_method": method,
    }


def _event(eid: str, kind: str, day: str, pid: str | None, area: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": eid,
        "event_type": kind,
        "event_date": date.fromisoformat(day),
        "person_id": pid,
        "area_code": area,
        "geography": GEOGRAPHY,
    }
    for key, value in extra.items():
        row[key] = date.fromisoformat(value) if key.endswith("date") and isinstance(value, str) else value
    return row


def small_register_frames() -> dict[str, pl.DataFrame]:
    """Ten persons in four households; in 2024: two births, a death, a move between communes,
    an arrival from outside, a departure, a marriage, a divorce and a contraception change.

    The counts the tests expect are written beside each record.
    """
    households = [
        {"household_id": "H1", "area_code": WARD_A, "geography": GEOGRAPHY},
        {"household_id": "H2", "area_code": WARD_A, "geography": GEOGRAPHY},
        {"household_id": "H3", "area_code": WARD_B, "geography": GEOGRAPHY},
        {"household_id": "H4", "area_code": COMMUNE_C, "geography": GEOGRAPHY},
    ]
    persons = [
        _person("P1", "H1", 1, "1990-05-10", WARD_A, "married"),  # husband of P2
        _person("P2", "H1", 2, "1992-08-20", WARD_A, "married", "iud"),  # gives birth in March 2024
        _person("P3", "H1", 1, "2018-01-15", WARD_A),  # child
        _person("P4", "H2", 2, "1940-02-01", WARD_A, "widowed"),  # dies June 2024, aged 84
        _person("P5", "H3", 1, "1998-03-03", WARD_B),  # marries P6 in May 2024
        _person("P6", "H3", 2, "1999-09-09", WARD_B),
        _person("P7", "H4", 2, "1985-11-30", COMMUNE_C, "married", "pill"),  # divorces P8 in Aug, stops pill
        _person("P8", "H4", 1, "1983-04-04", COMMUNE_C, "married"),
        _person("P9", "H4", 2, "2005-06-06", COMMUNE_C),  # moves C -> A in Sept 2024
        _person("P10", "H3", 1, "1970-12-12", WARD_B),  # leaves the province in Oct 2024
    ]
    events = [
        _event(
            "E1",
            "birth",
            "2024-03-15",
            "N1",
            WARD_A,
            household_id="H1",
            sex=1,
            birth_date="2024-03-15",
            mother_id="P2",
            mother_birth_date="1992-08-20",
            birth_order=2,
        ),
        _event("E2", "contraception_change", "2024-02-01", "P2", WARD_A),  # stops before the birth
        _event("E3", "death", "2024-06-20", "P4", WARD_A),
        _event("E4", "marriage", "2024-05-05", "P5", WARD_B, spouse_id="P6"),
        _event("E5", "divorce", "2024-08-08", "P7", COMMUNE_C, spouse_id="P8"),
        _event("E6", "contraception_change", "2024-08-08", "P7", COMMUNE_C),
        _event("E7", "move_out", "2024-09-01", "P9", COMMUNE_C, destination_area_code=WARD_A),
        _event("E8", "move_in", "2024-09-01", "P9", WARD_A, household_id="H1", origin_area_code=COMMUNE_C),
        _event("E9", "move_out", "2024-10-10", "P10", WARD_B),
        _event(
            "E10", "move_in", "2024-11-11", "A1", WARD_B, household_id="H3", sex=2, birth_date="2000-01-01"
        ),
        _event(
            "E11",
            "birth",
            "2024-12-01",
            "N2",
            COMMUNE_C,
            household_id="H4",
            sex=2,
            birth_date="2024-12-01",
            mother_id="P7",
            mother_birth_date="1985-11-30",
            birth_order=3,
        ),
    ]
    return {
        "households": frame(HOUSEHOLD_COLUMNS, households),
        "persons": frame(PERSON_COLUMNS, persons),
        "events": frame(EVENT_COLUMNS, events),
    }


def small_register() -> SourceRegister:
    return source_from_frames(
        small_register_frames(),
        reference_date=REFERENCE_DATE,
        end_date=END_DATE,
        geography=GEOGRAPHY,
        synthetic=True,
    )


def write_small_register(directory: Path) -> Path:
    write_register(directory, small_register())
    return directory

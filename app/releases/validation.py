"""Validation of canonical register records: every rejected row is kept with its file, line and reason.

Connectors hand over typed frames with a `line` column (the row's line in its source file, or its
ordinal for sources without lines) and a `parse_error` column for values they could not parse.
Validation rejects row by row and cascades: an event about a rejected person is rejected too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from app.cube import month_index
from app.errors import DomainError
from app.releases.builder import RegisterFrames
from connectors.canonical import (
    EVENT_COLUMNS,
    HOUSEHOLD_COLUMNS,
    MARITAL_STATUSES,
    PERSON_COLUMNS,
    RESIDENCE_KINDS,
    ContraceptiveMethod,
    EventType,
)


class RegisterFormatError(DomainError):
    """A source that cannot be read at all (wrong header, wrong encoding): the whole load fails."""

    status = 422
    code = "register-format"
    title = "Register file cannot be read"


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    record_id: str
    reason: str


@dataclass(frozen=True)
class SourceRegister:
    """What a connector produced: typed frames (with `line` and `parse_error`) and the period."""

    households: pl.DataFrame
    persons: pl.DataFrame
    events: pl.DataFrame
    reference_date: date  # the snapshot's date: stocks as at the end of its month
    end_date: date  # the last day the events cover
    geography: str
    synthetic: bool = False
    files: dict[str, str] = field(
        default_factory=lambda: {t: f"{t}.csv" for t in ("households", "persons", "events")}
    )


@dataclass
class ValidationResult:
    register: RegisterFrames
    rejects: list[Reject]
    rows_read: dict[str, int]


_METHODS = [m.value for m in ContraceptiveMethod]
_EVENT_TYPES = [e.value for e in EventType]
_PERSON_EVENTS = [e.value for e in EventType if not e.value.startswith("household_")]


def _take_rejects(
    frame: pl.DataFrame, reason: pl.Expr, file: str, id_column: str, sink: list[Reject]
) -> pl.DataFrame:
    """Split off the rows where `reason` is not null; record them and return the others."""
    marked = frame.with_columns(reason.alias("_reason"))
    bad = marked.filter(pl.col("_reason").is_not_null())
    sink.extend(
        Reject(file, line, record or "", why)
        for line, record, why in bad.select("line", pl.col(id_column).cast(pl.String), "_reason").iter_rows()
    )
    return marked.filter(pl.col("_reason").is_null()).drop("_reason")


def _first(*checks: tuple[pl.Expr, str | pl.Expr]) -> pl.Expr:
    """The first failing check's message, or null: one reason per rejected row."""
    expression: pl.Expr = pl.lit(None, dtype=pl.String)
    for failed, message in reversed(checks):
        reason = pl.lit(message) if isinstance(message, str) else message
        expression = pl.when(failed).then(reason).otherwise(expression)
    return expression


def _age_on(born: pl.Expr, day: pl.Expr | date) -> pl.Expr:
    target = day if isinstance(day, pl.Expr) else pl.lit(day)
    years = target.dt.year().cast(pl.Int32) - born.dt.year().cast(pl.Int32)
    before = (target.dt.month().cast(pl.Int32) * 100 + target.dt.day().cast(pl.Int32)) < (
        born.dt.month().cast(pl.Int32) * 100 + born.dt.day().cast(pl.Int32)
    )
    return years - before.cast(pl.Int32)


def validate_register(source: SourceRegister, communes: set[str]) -> ValidationResult:
    rejects: list[Reject] = []
    files = source.files
    codes = pl.Series(sorted(communes), dtype=pl.String)
    reference, end = source.reference_date, source.end_date
    geography_ok = pl.col("geography") == source.geography

    households = _take_rejects(
        source.households,
        _first(
            (pl.col("parse_error").is_not_null(), "cannot parse: " + pl.col("parse_error").fill_null("")),
            (pl.col("household_id").fill_null("") == "", "household_id is empty"),
            (pl.col("household_id").is_duplicated(), "duplicate household_id"),
            (~geography_ok.fill_null(False), f"geography must be {source.geography}"),
            (
                ~pl.col("area_code").is_in(codes.implode()).fill_null(False),
                "unknown area_code for this geography",
            ),
        ),
        files["households"],
        "household_id",
        rejects,
    )
    known_households = households["household_id"]

    persons = _take_rejects(
        source.persons,
        _first(
            (pl.col("parse_error").is_not_null(), "cannot parse: " + pl.col("parse_error").fill_null("")),
            (pl.col("person_id").fill_null("") == "", "person_id is empty"),
            (pl.col("person_id").is_duplicated(), "duplicate person_id"),
            (~pl.col("sex").is_in([1, 2]).fill_null(False), "sex must be 1 (male) or 2 (female)"),
            (pl.col("birth_date").is_null(), "birth_date is missing"),
            (pl.col("birth_date") > reference, "born after the snapshot's reference date"),
            (_age_on(pl.col("birth_date"), reference) > 130, "birth_date gives an age over 130"),
            (~geography_ok.fill_null(False), f"geography must be {source.geography}"),
            (
                ~pl.col("area_code").is_in(codes.implode()).fill_null(False),
                "unknown area_code for this geography",
            ),
            (
                ~pl.col("household_id").is_in(known_households.implode()).fill_null(False),
                "unknown or rejected household_id",
            ),
            (
                ~pl.col("residence").fill_null("permanent").is_in(list(RESIDENCE_KINDS)),
                "residence must be permanent or temporary",
            ),
            (
                ~pl.col("marital_status").fill_null("single").is_in(list(MARITAL_STATUSES)),
                "unknown marital_status",
            ),
            (
                pl.col("contraceptive_method").is_not_null()
                & ~pl.col("contraceptive_method").is_in(_METHODS),
                "unknown contraceptive_method",
            ),
            (
                pl.col("contraceptive_method").is_not_null()
                & (
                    (pl.col("sex") != 2)
                    | (pl.col("marital_status") != "married")
                    | ~_age_on(pl.col("birth_date"), reference).is_between(15, 49)
                ),
                "contraceptive_method is recorded only for married women aged 15-49",
            ),
        ),
        files["persons"],
        "person_id",
        rejects,
    )

    events = _validate_events(source, persons, known_households, codes, rejects)
    register = RegisterFrames(
        households=households.drop("line", "parse_error"),
        persons=persons.drop("line", "parse_error").with_columns(
            pl.col("residence").fill_null("permanent"), pl.col("marital_status").fill_null("single")
        ),
        events=events.drop("line", "parse_error"),
        snapshot_month=month_index(reference),
        last_month=month_index(end),
    )
    rows_read = {
        "households": source.households.height,
        "persons": source.persons.height,
        "events": source.events.height,
    }
    return ValidationResult(register, rejects, rows_read)


def _validate_events(
    source: SourceRegister,
    persons: pl.DataFrame,
    households: pl.Series,
    codes: pl.Series,
    rejects: list[Reject],
) -> pl.DataFrame:
    file = source.files["events"]
    kind = pl.col("event_type")
    reference, end = source.reference_date, source.end_date
    entering = kind.is_in([EventType.BIRTH.value, EventType.MOVE_IN.value]) & pl.col("sex").is_not_null()
    events = _take_rejects(
        source.events,
        _first(
            (pl.col("parse_error").is_not_null(), "cannot parse: " + pl.col("parse_error").fill_null("")),
            (pl.col("event_id").fill_null("") == "", "event_id is empty"),
            (
                pl.col("event_id").is_duplicated() & (pl.int_range(pl.len()).over("event_id") > 0),
                "duplicate event_id",
            ),
            (~kind.is_in(_EVENT_TYPES).fill_null(False), "unknown event_type"),
            (pl.col("event_date").is_null(), "event_date is missing"),
            (
                (pl.col("event_date") <= reference) | (pl.col("event_date") > end),
                f"event_date outside the register's range ({reference} exclusive to {end})",
            ),
            (pl.col("geography") != source.geography, f"geography must be {source.geography}"),
            (
                ~pl.col("area_code").is_in(codes.implode()).fill_null(False),
                "unknown area_code for this geography",
            ),
            (kind.is_in(_PERSON_EVENTS) & (pl.col("person_id").fill_null("") == ""), "person_id is empty"),
            (
                (kind == EventType.BIRTH.value) & ~pl.col("sex").is_in([1, 2]).fill_null(False),
                "a birth needs sex 1 or 2",
            ),
            (
                (kind == EventType.BIRTH.value)
                & (pl.col("birth_date") != pl.col("event_date")).fill_null(True),
                "a birth's birth_date must equal its event_date",
            ),
            (
                (kind == EventType.BIRTH.value) & (pl.col("birth_order").fill_null(0) < 1),
                "a birth needs birth_order 1 or more",
            ),
            (
                (kind == EventType.BIRTH.value)
                & ~_age_on(pl.col("mother_birth_date"), pl.col("event_date"))
                .is_between(10, 60)
                .fill_null(False),
                "mother_birth_date missing or the mother's age is outside 10-60",
            ),
            (
                kind.is_in([EventType.MARRIAGE.value, EventType.DIVORCE.value])
                & (pl.col("spouse_id").fill_null("") == ""),
                "a marriage or divorce needs spouse_id",
            ),
            (
                (kind == EventType.CONTRACEPTION_CHANGE.value)
                & pl.col("contraceptive_method").is_not_null()
                & ~pl.col("contraceptive_method").is_in(_METHODS),
                "unknown contraceptive_method",
            ),
            (
                kind.is_in([EventType.HOUSEHOLD_FORMED.value, EventType.HOUSEHOLD_DISSOLVED.value])
                & (pl.col("household_id").fill_null("") == ""),
                "a household event needs household_id",
            ),
            (
                (kind == EventType.MOVE_IN.value)
                & pl.col("origin_area_code").is_not_null()
                & (pl.col("origin_area_code") == pl.col("area_code")),
                "a move_in's origin is its own area",
            ),
            (entering & (pl.col("birth_date").is_null()), "a newcomer needs birth_date"),
        ),
        file,
        "event_id",
        rejects,
    )
    return _validate_lifelines(events, persons, file, rejects)


def _validate_lifelines(
    events: pl.DataFrame, persons: pl.DataFrame, file: str, rejects: list[Reject]
) -> pl.DataFrame:
    """Each event must fall inside its person's life in the register: after they enter, before they die.

    A person enters with the snapshot, a birth, or a move_in that carries sex and birth_date (an arrival
    from outside); a second birth or death of one person is rejected.
    """
    kind = pl.col("event_type")
    entries = pl.concat(
        [
            persons.select("person_id", pl.lit(None, dtype=pl.Date).alias("entered")),
            events.filter(
                kind.is_in([EventType.BIRTH.value, EventType.MOVE_IN.value]) & pl.col("sex").is_not_null()
            )
            .sort("event_date", "line")
            .select("person_id", pl.col("event_date").alias("entered")),
        ]
    ).unique("person_id", keep="first", maintain_order=True)
    deaths = (
        events.filter(kind == EventType.DEATH.value)
        .sort("event_date", "line")
        .group_by("person_id")
        .agg(pl.col("event_date").first().alias("died"), pl.col("event_id").first().alias("death_id"))
    )
    births = (
        events.filter(kind == EventType.BIRTH.value)
        .sort("event_date", "line")
        .group_by("person_id")
        .agg(pl.col("event_id").first().alias("birth_id"))
    )
    spouse_entries = entries.rename({"person_id": "spouse_id", "entered": "spouse_entered"}).with_columns(
        pl.lit(True).alias("spouse_known")
    )
    checked = (
        events.join(entries.with_columns(pl.lit(True).alias("known")), on="person_id", how="left")
        .join(deaths, on="person_id", how="left")
        .join(births, on="person_id", how="left")
        .join(spouse_entries, on="spouse_id", how="left")
    )
    person_event = kind.is_in(_PERSON_EVENTS)
    checked = _take_rejects(
        checked,
        _first(
            (
                person_event & pl.col("known").is_null(),
                "person never entered the register (no snapshot row, birth or arrival)",
            ),
            (
                person_event & (pl.col("event_date") < pl.col("entered")).fill_null(False),
                "event before the person entered the register",
            ),
            (
                (kind == EventType.BIRTH.value) & (pl.col("event_id") != pl.col("birth_id")),
                "the person was already born",
            ),
            (
                (kind == EventType.DEATH.value) & (pl.col("event_id") != pl.col("death_id")),
                "the person already died",
            ),
            (
                person_event
                & (kind != EventType.DEATH.value)
                & (pl.col("event_date") > pl.col("died")).fill_null(False),
                "event after the person's death",
            ),
            (
                pl.col("spouse_id").is_not_null() & pl.col("spouse_known").is_null(),
                "spouse never entered the register",
            ),
        ),
        file,
        "event_id",
        rejects,
    )
    return checked.select(*EVENT_COLUMNS, "line", "parse_error")


TABLE_COLUMNS = {"households": HOUSEHOLD_COLUMNS, "persons": PERSON_COLUMNS, "events": EVENT_COLUMNS}


def source_from_frames(frames: dict[str, pl.DataFrame], **meta: Any) -> SourceRegister:
    """A SourceRegister from typed frames made in memory (each row is its own line)."""

    def lined(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).add(1).alias("line"),
            pl.lit(None, dtype=pl.String).alias("parse_error"),
        )

    return SourceRegister(
        households=lined(frames["households"]),
        persons=lined(frames["persons"]),
        events=lined(frames["events"]),
        **meta,
    )

"""The connector interface: a source in, canonical register records out."""

from __future__ import annotations

from typing import Protocol

import polars as pl

from app.releases.validation import RegisterFormatError, SourceRegister
from connectors.canonical import TABLES, column_type


class RegisterConnector(Protocol):
    """A source of register records (a directory of CSVs, a database, a generator)."""

    @property
    def name(self) -> str:
        """The connector's registry name."""
        ...

    def describe(self) -> str:
        """What is read, safe to store and show (no passwords)."""
        ...

    async def read(self) -> SourceRegister: ...


def parse_table(table: str, text: pl.DataFrame, first_line: int = 2) -> pl.DataFrame:
    """Typed canonical columns from text columns, with `line` and the `parse_error` of each row.

    Empty strings are missing values. A value that does not parse becomes a row-level error, not a
    failed load: the row is rejected with its line and the column it could not read.
    """
    columns = TABLES[table]
    missing = [c for c in columns if c not in text.columns]
    if missing:
        raise RegisterFormatError(
            f"{table}: header lacks {', '.join(missing)}; expected columns: {', '.join(columns)}"
        )
    blank = {
        c: pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c).str.strip_chars())
        for c in columns
    }
    frame = text.select(**blank).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).add(first_line).alias("line")
    )
    errors: list[pl.Expr] = []
    casts: list[pl.Expr] = []
    for column in columns:
        dtype = column_type(column)
        if dtype == "String":
            continue
        if dtype == "Date":
            parsed = pl.col(column).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        else:
            parsed = pl.col(column).cast(getattr(pl, dtype), strict=False)
        casts.append(parsed.alias(column))
        errors.append(
            pl.when(pl.col(column).is_not_null() & parsed.is_null())
            .then(pl.format(f"{column}='{{}}'", pl.col(column)))
            .otherwise(None)
            .alias(f"_e_{column}")
        )
    typed = [c for c in columns if column_type(c) != "String"]
    if not typed:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias("parse_error"))
    problems = pl.concat_str([pl.col(f"_e_{c}") for c in typed], separator="; ", ignore_nulls=True)
    return (
        frame.with_columns(errors)
        .with_columns(pl.when(problems == "").then(None).otherwise(problems).alias("parse_error"))
        .with_columns(casts)
        .select(*columns, "line", "parse_error")
    )


class PreparedConnector:
    """A register already in memory (a generator's output, a test's records)."""

    def __init__(self, name: str, description: str, source: SourceRegister) -> None:
        self.name, self._description, self._source = name, description, source

    def describe(self) -> str:
        return self._description

    async def read(self) -> SourceRegister:
        return self._source

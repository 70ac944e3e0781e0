"""The `sql` connector: the register's tables in a PostgreSQL database, read in batches.

The database holds tables `households`, `persons` and `events` with the canonical columns (any
column types: values are read as text and parsed like CSV), and a one-row table `register_manifest`
(geography, reference_date, end_date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg  # type: ignore[import-untyped]
import polars as pl
from sqlalchemy.engine import make_url

from app.releases.validation import RegisterFormatError, SourceRegister
from connectors.base import parse_table
from connectors.canonical import TABLES

BATCH_ROWS = 50_000


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class SqlConnector:
    url: str
    name: str = "sql"
    batch_rows: int = BATCH_ROWS

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    async def read(self) -> SourceRegister:
        try:
            connection = await asyncpg.connect(_dsn(self.url))
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise RegisterFormatError(f"cannot connect to {self.describe()}: {exc}") from None
        try:
            manifest = await connection.fetchrow(
                "SELECT geography, reference_date::text AS reference_date, end_date::text AS end_date "
                "FROM register_manifest LIMIT 1"
            )
            if manifest is None:
                raise RegisterFormatError("register_manifest is empty")
            frames = {table: await self._read_table(connection, table) for table in TABLES}
        except asyncpg.UndefinedTableError as exc:
            raise RegisterFormatError(f"{self.describe()}: {exc}") from None
        except asyncpg.UndefinedColumnError as exc:
            raise RegisterFormatError(f"{self.describe()}: {exc}; expected the canonical columns") from None
        finally:
            await connection.close()
        return SourceRegister(
            households=frames["households"],
            persons=frames["persons"],
            events=frames["events"],
            reference_date=date.fromisoformat(manifest["reference_date"]),
            end_date=date.fromisoformat(manifest["end_date"]),
            geography=manifest["geography"],
            files={table: f"table {table}" for table in TABLES},
        )

    async def _read_table(self, connection: asyncpg.Connection, table: str) -> pl.DataFrame:
        columns = TABLES[table]
        select = ", ".join(f'"{c}"::text' for c in columns)
        # A server-side cursor in a transaction keeps memory flat however large the register is.
        batches: list[pl.DataFrame] = []
        async with connection.transaction():
            cursor = await connection.cursor(f'SELECT {select} FROM "{table}" ORDER BY 1')
            while rows := await cursor.fetch(self.batch_rows):
                batches.append(
                    pl.DataFrame(
                        [tuple(r) for r in rows], schema=dict.fromkeys(columns, pl.String), orient="row"
                    )
                )
        text = pl.concat(batches) if batches else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
        return parse_table(table, text.fill_null(""), first_line=1)

"""SQL for reference-data loads: replace a table's rows by a new full set, touching only what changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from app.models import ReconciliationIssue

_BATCH = 2000


@dataclass(frozen=True)
class SyncResult:
    inserted: int
    updated: int
    deleted: int
    unchanged: int

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


async def sync_rows(
    session: AsyncSession,
    model: type[SQLModel],
    rows: Sequence[Mapping[str, Any]],
    scope: Mapping[str, Any] | None = None,
) -> SyncResult:
    """Make the rows of `model` within `scope` (column = value) equal to `rows`.

    Idempotent by construction: a second call with the same rows finds nothing to do.
    """
    table = model.__table__  # type: ignore[attr-defined]
    key_columns = [column.name for column in table.primary_key.columns]
    columns = [column.name for column in table.columns]
    conditions = [table.c[name] == value for name, value in (scope or {}).items()]
    existing: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in (await session.execute(select(table).where(*conditions))).mappings():
        existing[tuple(record[k] for k in key_columns)] = dict(record)

    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        key = tuple(row[k] for k in key_columns)
        seen.add(key)
        old = existing.get(key)
        if old is None:
            to_insert.append(dict(row))
        elif any(old[c] != row.get(c, old[c]) for c in columns):
            to_update.append(dict(row))
    stale = [key for key in existing if key not in seen]

    for batch in _batches(to_insert):
        await session.execute(insert(table), batch)
    for row in to_update:
        where = [table.c[k] == row[k] for k in key_columns]
        values = {c: row[c] for c in columns if c in row and c not in key_columns}
        await session.execute(update(table).where(*where).values(**values))
    for key in stale:
        await session.execute(
            delete(table).where(*[table.c[k] == v for k, v in zip(key_columns, key, strict=True)])
        )
    unchanged = len(rows) - len(to_insert) - len(to_update)
    return SyncResult(len(to_insert), len(to_update), len(stale), unchanged)


def _batches(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


async def replace_issues(session: AsyncSession, dataset: str, issues: Sequence[tuple[str, str]]) -> None:
    """Keep exactly the given (key, detail) issues for a dataset."""
    rows = [{"dataset": dataset, "key": key, "detail": detail} for key, detail in issues]
    current = (
        await session.execute(
            select(col(ReconciliationIssue.key), col(ReconciliationIssue.detail)).where(
                col(ReconciliationIssue.dataset) == dataset
            )
        )
    ).all()
    if sorted(tuple(row) for row in current) == sorted(issues):
        return
    await session.execute(delete(ReconciliationIssue).where(col(ReconciliationIssue.dataset) == dataset))
    for batch in _batches(rows):
        await session.execute(insert(ReconciliationIssue), batch)

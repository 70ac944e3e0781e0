"""SQL for register loads, rejects, releases and the base cube."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col, select

from app.models import Area, AreaLink, CubeCell, LoadReject, PublishedCell, RegisterLoad, Release

_BATCH = 5000


class ReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- loads -----------------------------------------------------------------------------------

    async def start_load(self, connector: str, source: str) -> RegisterLoad:
        load = RegisterLoad(
            connector=connector, source=source, input_hash="", status="running", started_at=datetime.now(UTC)
        )
        self.session.add(load)
        await self.session.flush()
        return load

    async def finish_load(self, load_id: int, **values: Any) -> None:
        values["finished_at"] = datetime.now(UTC)
        await self.session.execute(
            update(RegisterLoad).where(col(RegisterLoad.id) == load_id).values(**values)
        )

    async def add_rejects(self, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), _BATCH):
            await self.session.execute(insert(LoadReject), list(rows[start : start + _BATCH]))

    async def get_load(self, load_id: int) -> RegisterLoad | None:
        return await self.session.get(RegisterLoad, load_id)

    async def rejects(self, load_id: int, limit: int) -> Sequence[LoadReject]:
        query = (
            select(LoadReject)
            .where(col(LoadReject.load_id) == load_id)
            .order_by(col(LoadReject.id))
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    # ---- reference data the builder needs ----------------------------------------------------------

    async def areas(self, geography: str) -> Sequence[Area]:
        return (await self.session.scalars(select(Area).where(col(Area.geography) == geography))).all()

    async def links_from(self, geography: str) -> dict[str, Sequence[AreaLink]]:
        rows = (
            await self.session.scalars(select(AreaLink).where(col(AreaLink.from_geography) == geography))
        ).all()
        grouped: dict[str, Sequence[AreaLink]] = {}
        for link in rows:
            grouped.setdefault(link.to_geography, [])
            grouped[link.to_geography].append(link)  # type: ignore[attr-defined]
        return grouped

    # ---- releases ----------------------------------------------------------------------------------

    async def release_with_hash(self, kind: str, input_hash: str) -> Release | None:
        query = select(Release).where(col(Release.kind) == kind, col(Release.input_hash) == input_hash)
        return (await self.session.scalars(query.limit(1))).first()

    async def add_release(
        self, release: Release, rows: Iterable[tuple[type[SQLModel], dict[str, Any]]]
    ) -> int:
        """Insert a release and its rows (cube and published atoms) in the caller's transaction: it
        appears whole or not at all. Returns the number of cube rows."""
        self.session.add(release)
        await self.session.flush()
        batches: dict[type[SQLModel], list[dict[str, Any]]] = {}
        written = 0

        async def flush(table: type[SQLModel], batch: list[dict[str, Any]]) -> None:
            # A Core insert of the table: an executemany, without the ORM's per-row bookkeeping.
            await self.session.execute(insert(SQLModel.metadata.tables[str(table.__tablename__)]), batch)
            batch.clear()

        for table, row in rows:
            batch = batches.setdefault(table, [])
            batch.append(row)
            written += table is CubeCell
            if len(batch) >= _BATCH:
                await flush(table, batch)
        for table, batch in batches.items():
            if batch:
                await flush(table, batch)
        return written

    async def list_releases(self) -> Sequence[Release]:
        return (await self.session.scalars(select(Release).order_by(col(Release.created_at).desc()))).all()

    async def get_release(self, release_id: str) -> Release | None:
        return await self.session.get(Release, release_id)

    async def latest_release(self, kind: str) -> Release | None:
        query = (
            select(Release).where(col(Release.kind) == kind).order_by(col(Release.created_at).desc()).limit(1)
        )
        return (await self.session.scalars(query)).first()

    async def rows(
        self, release_id: str, geography: str, area_codes: Sequence[str], months: Sequence[int]
    ) -> Sequence[tuple[str, int, bytes]]:
        """Encoded cube rows for the given areas and months (absent rows are zeros)."""
        query = select(col(CubeCell.area_code), col(CubeCell.month), col(CubeCell.counts)).where(
            col(CubeCell.release_id) == release_id,
            col(CubeCell.geography) == geography,
            col(CubeCell.area_code).in_(list(area_codes)),
            col(CubeCell.month).in_(list(months)),
        )
        return [(a, m, c) for a, m, c in (await self.session.execute(query)).all()]

    async def published_rows(
        self,
        release_id: str,
        geography: str,
        area_codes: Sequence[str],
        time_unit: str,
        periods: Sequence[int],
    ) -> Sequence[tuple[str, int, bytes, bytes | None]]:
        """Published atom rows (values and exact flags) of one time unit's bundle."""
        query = select(
            col(PublishedCell.area_code),
            col(PublishedCell.period),
            col(PublishedCell.values),
            col(PublishedCell.exact),
        ).where(
            col(PublishedCell.release_id) == release_id,
            col(PublishedCell.geography) == geography,
            col(PublishedCell.time_unit) == time_unit,
            col(PublishedCell.area_code).in_(list(area_codes)),
            col(PublishedCell.period).in_(list(periods)),
        )
        # On the session's connection (Core): plain rows, without the ORM's per-row result handling.
        connection = await self.session.connection()
        return [(a, p, v, e) for a, p, v, e in (await connection.execute(query)).all()]

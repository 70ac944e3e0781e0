"""SQL for geography versions, areas and crosswalk links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.models import Area, AreaLink, Geography, ReconciliationIssue
from app.paging import Page


@dataclass(frozen=True)
class AreaFilter:
    geography: str
    level: str | None = None
    parent: str | None = None
    q_folded: str | None = None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class GeographyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_geographies(self) -> Sequence[Geography]:
        return (await self.session.scalars(select(Geography).order_by(col(Geography.valid_from)))).all()

    async def get_geography(self, geography_id: str) -> Geography | None:
        return await self.session.get(Geography, geography_id)

    async def count_areas_by_level(self, geography_id: str) -> dict[str, int]:
        query = (
            select(col(Area.level), func.count())
            .where(col(Area.geography) == geography_id)
            .group_by(col(Area.level))
        )
        return {level: count for level, count in (await self.session.execute(query)).all()}

    async def list_areas(self, where: AreaFilter, after: str | None, limit: int) -> Page[Area]:
        conditions: list[ColumnElement[bool]] = [col(Area.geography) == where.geography]
        if where.level is not None:
            conditions.append(col(Area.level) == where.level)
        if where.parent is not None:
            conditions.append(col(Area.parent_code) == where.parent)
        if where.q_folded:
            pattern = f"%{_like_escape(where.q_folded)}%"
            conditions.append(
                or_(col(Area.name_ascii).like(pattern, escape="\\"), col(Area.code) == where.q_folded)
            )
        total = await self.session.scalar(select(func.count()).select_from(Area).where(*conditions))
        query = select(Area).where(*conditions)
        if after is not None:
            query = query.where(col(Area.code) > after)
        rows = list((await self.session.scalars(query.order_by(col(Area.code)).limit(limit + 1))).all())
        more = len(rows) > limit
        items = rows[:limit]
        return Page(items=items, total=total or 0, next_after=items[-1].code if more and items else None)

    async def get_area(self, geography_id: str, code: str) -> Area | None:
        return await self.session.get(Area, (geography_id, code))

    async def get_areas(self, geography_id: str, codes: Sequence[str]) -> dict[str, Area]:
        if not codes:
            return {}
        query = select(Area).where(col(Area.geography) == geography_id, col(Area.code).in_(codes))
        return {area.code: area for area in await self.session.scalars(query)}

    async def children(self, geography_id: str, code: str) -> Sequence[Area]:
        query = (
            select(Area)
            .where(col(Area.geography) == geography_id, col(Area.parent_code) == code)
            .order_by(col(Area.code))
        )
        return (await self.session.scalars(query)).all()

    async def children_of(self, geography_id: str, codes: Sequence[str]) -> dict[str, list[Area]]:
        """Children of several areas in one statement, by parent code (each list ordered by code)."""
        found: dict[str, list[Area]] = {code: [] for code in codes}
        if not codes:
            return found
        query = (
            select(Area)
            .where(col(Area.geography) == geography_id, col(Area.parent_code).in_(codes))
            .order_by(col(Area.code))
        )
        for area in await self.session.scalars(query):
            assert area.parent_code is not None
            found[area.parent_code].append(area)
        return found

    async def descendant_codes(self, geography_id: str, code: str, level: str) -> list[str]:
        """Codes of the units at `level` below `code` (one or two levels down)."""
        child = aliased(Area)
        direct = select(col(Area.code)).where(
            col(Area.geography) == geography_id, col(Area.parent_code) == code, col(Area.level) == level
        )
        nested = (
            select(col(Area.code))
            .join(
                child,
                (col(child.geography) == col(Area.geography)) & (col(child.code) == col(Area.parent_code)),
            )
            .where(
                col(Area.geography) == geography_id, col(child.parent_code) == code, col(Area.level) == level
            )
        )
        rows = await self.session.scalars(direct.union_all(nested))
        return sorted(rows.all())

    async def links_from(
        self, geography_id: str, codes: Sequence[str], to_geography: str
    ) -> Sequence[AreaLink]:
        query = (
            select(AreaLink)
            .where(
                col(AreaLink.from_geography) == geography_id,
                col(AreaLink.from_code).in_(codes),
                col(AreaLink.to_geography) == to_geography,
            )
            .order_by(col(AreaLink.from_code), col(AreaLink.to_code))
        )
        return (await self.session.scalars(query)).all()

    async def links_to(
        self, geography_id: str, codes: Sequence[str], from_geography: str
    ) -> Sequence[AreaLink]:
        query = (
            select(AreaLink)
            .where(
                col(AreaLink.to_geography) == geography_id,
                col(AreaLink.to_code).in_(codes),
                col(AreaLink.from_geography) == from_geography,
            )
            .order_by(col(AreaLink.to_code), col(AreaLink.from_code))
        )
        return (await self.session.scalars(query)).all()

    async def linked_geographies(self, geography_id: str, outgoing: bool) -> list[str]:
        if outgoing:
            query = select(col(AreaLink.to_geography)).where(col(AreaLink.from_geography) == geography_id)
        else:
            query = select(col(AreaLink.from_geography)).where(col(AreaLink.to_geography) == geography_id)
        return sorted(set((await self.session.scalars(query.distinct())).all()))

    async def reconciliation_issues(self, dataset_prefix: str) -> Sequence[ReconciliationIssue]:
        query = (
            select(ReconciliationIssue)
            .where(col(ReconciliationIssue.dataset).startswith(dataset_prefix))
            .order_by(col(ReconciliationIssue.id))
        )
        return (await self.session.scalars(query)).all()

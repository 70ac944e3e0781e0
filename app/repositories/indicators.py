"""SQL for the indicator catalogue."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import Indicator


class IndicatorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_indicators(self, topic: str | None) -> Sequence[Indicator]:
        query = select(Indicator)
        if topic is not None:
            query = query.where(col(Indicator.topic) == topic)
        return (await self.session.scalars(query.order_by(col(Indicator.code)))).all()

    async def topics(self) -> list[str]:
        return sorted((await self.session.scalars(select(col(Indicator.topic)).distinct())).all())

"""The per-request GraphQL context: the same session, settings, principal and language as REST, plus loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from app.api.deps import Lang, LangDep, ReadSessionDep, ReferenceDep, SettingsDep
from app.models import Indicator
from app.query.rows import PublishedRows
from app.query.service import ObservationQuery, count_cells
from app.reference import Snapshot
from app.repositories.geography import GeographyRepository
from app.repositories.indicators import IndicatorRepository
from app.repositories.releases import ReleaseRepository
from app.services.data import DataService
from app.services.geography import GeographyService
from app.services.indicators import IndicatorService
from app.services.releases import ReleaseService
from app.settings import Settings
from auth.dependencies import PrincipalDep
from auth.principal import Principal
from schema.errors import QueryTooCostly
from schema.loaders import Loaders

T = TypeVar("T")


class PortalContext(BaseContext):
    """What every resolver reads. The tier comes from the principal, never from a query argument."""

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        reference: Snapshot,
        principal: Principal,
        lang: Lang,
        rows: PublishedRows | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.settings = settings
        self.principal = principal
        self.lang: Lang = lang
        self.geography = GeographyService(GeographyRepository(session))
        self.indicators = IndicatorService(IndicatorRepository(session))
        self.releases = ReleaseService(ReleaseRepository(session))
        self.reference = reference
        self.data = DataService(session, settings.max_cells, reference, rows)
        self.query_service = self.data.queries
        # One AsyncSession cannot run two statements at once, and sibling resolvers run concurrently.
        self._store = asyncio.Lock()
        self.cells = 0  # observations charged so far against the request's budget (settings.max_cells)
        self.loaders = Loaders(self)

    async def store(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one service call with the request's session to itself."""
        async with self._store:
            return await call()

    async def indicator(self, code: str) -> Indicator:
        return self.reference.require_indicator(code)

    async def cost(self, query: ObservationQuery) -> int:
        """Cells a query touches, by the query service's own cost model (the one behind REST's cap)."""
        return count_cells(await self.indicator(query.indicator), query)

    async def charge(self, query: ObservationQuery) -> None:
        """Count a query's cells against the request's budget, before the store is read."""
        self.cells += await self.cost(query)
        if self.cells > self.settings.max_cells:
            raise QueryTooCostly(self.cells, self.settings.max_cells)


async def graphql_context(
    request: Request,
    response: Response,
    session: ReadSessionDep,
    settings: SettingsDep,
    reference: ReferenceDep,
    principal: PrincipalDep,
    lang: LangDep,
) -> PortalContext:
    """Built from the REST dependencies, so both APIs see one session per request, the same settings,
    the same caller (the principal the gateway resolved from the bearer token or API key) and the
    same label language (`?lang=` or Accept-Language)."""
    request.state.graphql_response = response
    return PortalContext(session, settings, reference, principal, lang, request.app.state.rows)

"""The Query root: each resolver resolves its arguments, calls one service method and maps the result."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import strawberry

from app.errors import InvalidParameter
from app.paging import decode_cursor, encode_cursor
from schema.types import (
    AgeArg,
    Area,
    AreaConnection,
    AreaEdge,
    AreaFilter,
    ByArg,
    Geography,
    Indicator,
    IndicatorArg,
    Info,
    ObservationResult,
    PageInfo,
    PeriodsArg,
    Release,
    ReleaseArg,
    SexArg,
    data_request,
)

GeographyArg = Annotated[str, strawberry.argument(description="Geography version id, e.g. vn-2025-07")]


def _page_size(info: Info, first: int | None, maximum: int) -> int:
    settings = info.context.settings
    size = settings.default_page_size if first is None else first
    if not 1 <= size <= maximum:
        raise InvalidParameter(f"first must lie within 1..{maximum}, not {size}")
    return size


@strawberry.type(
    description="Population indicators of Vietnamese provinces, privacy-filtered, and their reference data"
)
class Query:
    @strawberry.field(description="Geography versions and their unit counts")
    async def geographies(self, info: Info) -> list[Geography]:
        ctx = info.context
        return [Geography.of(s, ctx.lang) for s in await ctx.store(ctx.geography.list_geographies)]

    @strawberry.field(description="One area; an error with code unknown-area when it does not exist")
    async def area(
        self,
        info: Info,
        geography: GeographyArg,
        code: Annotated[str, strawberry.argument(description="GSO code of the area, e.g. 24")],
    ) -> Area | None:
        ctx = info.context
        return Area.of(await ctx.store(partial(ctx.geography.require_area, geography, code)))

    @strawberry.field(
        description="Areas of one geography version, filtered and paged by code (Relay connection)"
    )
    async def areas(
        self,
        info: Info,
        filter: Annotated[AreaFilter, strawberry.argument(description="Which areas")],
        first: Annotated[
            int | None, strawberry.argument(description="Page size; default the server's")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page")
        ] = None,
    ) -> AreaConnection:
        ctx = info.context
        size = _page_size(info, first, ctx.settings.max_page_size)
        page = await ctx.store(
            partial(
                ctx.geography.list_areas,
                filter.geography,
                filter.level,
                filter.parent,
                filter.q,
                decode_cursor(after),
                size,
            )
        )
        edges = [AreaEdge(cursor=encode_cursor(a.code), node=Area.of(a)) for a in page.items]
        return AreaConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.next_after is not None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
        )

    @strawberry.field(description="The indicator catalogue, searched by code and names, filtered by topic")
    async def indicators(
        self,
        info: Info,
        q: Annotated[str | None, strawberry.argument(description="Search, accent-insensitive")] = None,
        topic: Annotated[str | None, strawberry.argument(description="Topic, e.g. fertility")] = None,
    ) -> list[Indicator]:
        ctx = info.context
        found = await ctx.store(partial(ctx.indicators.list_indicators, q, topic))
        return [Indicator.of(i, ctx.lang) for i in found]

    @strawberry.field(
        description="One indicator; an error with code unknown-indicator when it does not exist"
    )
    async def indicator(self, info: Info, code: IndicatorArg) -> Indicator | None:
        return Indicator.of(await info.context.indicator(code), info.context.lang)

    @strawberry.field(description="Published releases, newest first")
    async def releases(self, info: Info) -> list[Release]:
        ctx = info.context
        return [Release.of(s) for s in await ctx.store(ctx.releases.list_releases)]

    @strawberry.field(
        description="Released values of one indicator for areas x periods x breakdowns: the same query "
        "data service, privacy filter and cell cap as REST /v1/data. Cells count against the request's cost"
    )
    async def observations(
        self,
        info: Info,
        indicator: IndicatorArg,
        geography: GeographyArg,
        periods: PeriodsArg,
        areas: Annotated[
            list[str] | None, strawberry.argument(description="GSO codes of the areas (or parent and level)")
        ] = None,
        parent: Annotated[
            str | None, strawberry.argument(description="With level: every area at that level below this one")
        ] = None,
        level: Annotated[
            str | None,
            strawberry.argument(description="province, district or commune, with or without parent"),
        ] = None,
        sex: SexArg = None,
        age: AgeArg = None,
        by: ByArg = None,
        release: ReleaseArg = None,
        first: Annotated[
            int | None, strawberry.argument(description="Page size; default all the observations")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page")
        ] = None,
    ) -> ObservationResult:
        ctx = info.context
        request = data_request(indicator, geography, areas, periods, sex, age, by, release, parent, level)
        query = await ctx.store(partial(ctx.data.query, request))
        await ctx.charge(query)
        result = await ctx.store(partial(ctx.query_service.observations, query, ctx.principal.tier))
        start = _offset(after)
        size = len(result.observations) if first is None else _page_size(info, first, ctx.settings.max_cells)
        page = result.observations[start : start + size]
        end = start + len(page)
        more = end < len(result.observations)
        return ObservationResult.of(
            result,
            page,
            geography,
            PageInfo(has_next_page=more, end_cursor=encode_cursor(str(end)) if page else None),
            len(result.observations),
        )


def _offset(after: str | None) -> int:
    raw = decode_cursor(after)
    if raw is None:
        return 0
    if not raw.isdigit():
        raise InvalidParameter("after is not a cursor of these observations; use pageInfo.endCursor")
    return int(raw)

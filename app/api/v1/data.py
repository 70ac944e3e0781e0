"""Routes for indicator data: observations in four formats, and the bulk download."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response, StreamingResponse

from app.api.deps import (
    Lang,
    LangDep,
    ReferenceDep,
    SettingsDep,
    choose_lang,
    choose_page_size,
    get_reference,
    get_settings,
    next_link,
)
from app.api.params import QueryModel
from app.api.v1.schemas import DataPage
from app.db import Deadline, read_retrying
from app.errors import InvalidParameter, QueryTimeout
from app.formats.observations import metadata, observation_json
from app.formats.tables import render_csv, render_jsonstat, render_sdmx_csv
from app.http import OrjsonResponse
from app.paging import decode_cursor, encode_cursor
from app.services.bulk import BulkService
from app.services.data import DataRequest, DataService, LabelledResult
from auth.dependencies import PrincipalDep, principal_of

router = APIRouter(tags=["data"])

Format = Literal["json", "csv", "jsonstat", "sdmx-csv"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "jsonstat": "application/json-stat+json",
    "sdmx-csv": "application/vnd.sdmx.data+csv; version=2.0.0; charset=utf-8",
}
_ACCEPTED: list[tuple[str, Format]] = [
    ("application/vnd.sdmx.data+csv", "sdmx-csv"),
    ("application/json-stat+json", "jsonstat"),
    ("text/csv", "csv"),
    ("application/json", "json"),
]

IndicatorPath = Annotated[str, Path(description="Indicator code (see /v1/indicators)", examples=["CBR"])]


def _format(request: Request, requested: Format | None) -> Format:
    """`format=` wins; else the first media type of `Accept` that the API serves; else JSON."""
    if requested is not None:
        return requested
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        for accepted, name in _ACCEPTED:
            if media == accepted:
                return name
    return "json"


class DataQuery(QueryModel):
    """The query of `GET /v1/data/{indicator}`."""

    period: str = Field(
        description="Periods: a year (2024), quarter (2024-Q1) or month (2024-03), comma-separated, "
        "or a range such as 2023-01..2024-12",
        examples=["2024"],
    )
    area: str | None = Field(
        None, description="Area codes, comma-separated", examples=["24,38"], max_length=8000
    )
    parent: str | None = Field(
        None, description="With `level`: every area at that level below this one", examples=["24"]
    )
    level: str | None = Field(
        None, description="province, district or commune (without `parent`: all the release covers)"
    )
    geography: str = Field(
        "vn-2025-01", description="Geography version of the area codes", examples=["vn-2025-01"]
    )
    sex: str | None = Field(None, description="male or female", examples=["female"])
    age: str | None = Field(
        None, description="Age ranges in completed years, comma-separated: 15-49, 60+, 5", examples=["15-49"]
    )
    by: str | None = Field(
        None, description="Breakdowns: sex, age5, age1, or age (the ranges of `age`)", examples=["sex,age5"]
    )
    release: str | None = Field(None, description="A release id (default: the newest register release)")
    numerators: bool = Field(False, description="Include each value's numerator and denominator")
    format: Format | None = Field(
        None, description="json, csv, jsonstat (JSON-stat 2.0) or sdmx-csv (SDMX-CSV 2.0); else from Accept"
    )
    bom: bool = Field(False, description="CSV: start with a UTF-8 byte order mark, for Excel")
    cursor: str | None = Field(None, description="Opaque cursor from the `next` link of a previous page")
    lang: Lang | None = Field(None, description="Label language; default from Accept-Language, else vi")
    limit: int | None = Field(None, ge=1, description="Page size; bounded by the server's maximum")


@router.get(
    "/data/{indicator}",
    operation_id="getData",
    response_model=DataPage,
    responses={
        200: {
            "content": {
                "text/csv": {"example": "area_code,area_name,period,...\r\n"},
                "application/json-stat+json": {},
                "application/vnd.sdmx.data+csv": {},
            }
        }
    },
    openapi_extra={"parameters": DataQuery.openapi_parameters()},
)
async def get_data(request: Request, indicator: IndicatorPath) -> Response:
    """Observations of one indicator for areas x periods x breakdowns, released for the caller's tier.

    Every value is a sum of published (perturbed) atoms, or a rate of such sums; `status` is the SDMX
    OBS_STATUS (A normal, U low reliability, Q suppressed, O missing), `perturbed` says whether the
    value differs from the exact figure by design. JSON is paged (`next`); the other formats hold
    the whole answer, up to the cell limit.
    """
    # The busiest route: its query is one model and its context is read from the app, not declared
    # as dependencies (app/api/params.py says why).
    query = DataQuery.from_request(request)
    settings = await get_settings(request)
    lang = choose_lang(request, query.lang)
    limit = choose_page_size(settings, query.limit)
    reference = await get_reference(request)
    principal = principal_of(request)
    asked = DataRequest(
        indicator,
        query.geography,
        query.period,
        query.area,
        query.parent,
        query.level,
        query.sex,
        query.age,
        query.by,
        query.release,
    )

    async def read(session: AsyncSession) -> LabelledResult:
        data = DataService(session, settings.max_cells, reference, request.app.state.rows)
        return await data.observations(asked, principal.tier)

    try:
        with Deadline(settings.query_timeout_seconds):
            labelled = await read_retrying(request.app.state.sessions, read)
    except TimeoutError:
        raise QueryTimeout(
            f"the query ran longer than {settings.query_timeout_seconds:g} s; ask for fewer areas or "
            "periods, or use the bulk download",
            limit_seconds=settings.query_timeout_seconds,
        ) from None
    return _render(request, labelled, query, lang, limit)


async def get_data_express(request: Request) -> Response:
    """`get_data` for the gateway's express lane (app/express.py), which skips FastAPI's router."""
    return await get_data(request, request.path_params["indicator"])


def _render(request: Request, labelled: LabelledResult, query: DataQuery, lang: Lang, limit: int) -> Response:
    chosen = _format(request, query.format)
    if chosen == "csv":
        return Response(render_csv(labelled, lang, query.bom), media_type=MEDIA_TYPES["csv"])
    if chosen == "jsonstat":
        return Response(render_jsonstat(labelled, lang), media_type=MEDIA_TYPES["jsonstat"])
    if chosen == "sdmx-csv":
        return Response(render_sdmx_csv(labelled), media_type=MEDIA_TYPES["sdmx-csv"])
    observations = labelled.result.observations
    start = _offset(decode_cursor(query.cursor))
    page = observations[start : start + limit]
    following = encode_cursor(str(start + limit)) if start + limit < len(observations) else None
    decimals = labelled.result.indicator.decimals
    return OrjsonResponse(
        {
            **metadata(labelled.result, lang),
            "items": [observation_json(o, decimals, query.numerators) for o in page],
            "total": len(observations),
            "next": next_link(request, following),
        }
    )


def _offset(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdigit():
        raise InvalidParameter("cursor is not valid; use the `next` link of a previous page")
    return int(after)


@router.get(
    "/bulk/{indicator}.csv.gz",
    operation_id="getBulk",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/gzip": {}}}},
)
async def get_bulk(
    request: Request,
    settings: SettingsDep,
    reference: ReferenceDep,
    principal: PrincipalDep,
    lang: LangDep,
    indicator: IndicatorPath,
    geography: Annotated[str, Query(description="Geography version", examples=["vn-2025-01"])] = "vn-2025-01",
    release: Annotated[str | None, Query(description="A release id (default: the newest)")] = None,
) -> StreamingResponse:
    """Every publishable cell of one indicator for the caller's tier, as gzip-compressed CSV.

    Each area of the release x each whole year, quarter and month, in total and by sex where the
    indicator has that breakdown; cells finer than the tier's atoms are left out. Streamed as it is
    computed, area batch by area batch.
    """
    bulk = BulkService(request.app.state.sessions, settings.max_cells, reference)
    stream = await bulk.prepare(indicator, geography, release, principal.tier, lang)
    filename = f"{stream.indicator}-{stream.release_id}-{principal.tier.value}.csv.gz"
    return StreamingResponse(
        stream.chunks(),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )

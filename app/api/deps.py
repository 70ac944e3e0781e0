"""Dependencies shared by the routers: the request's session, label language and page size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidParameter
from app.reference import Snapshot
from app.settings import Settings

Lang = Literal["vi", "en"]


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the thread
# pool, a hop per dependency per request that costs more than the dependency itself.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; it commits when the handler returns and rolls back on error."""
    async with request.app.state.sessions() as session, session.begin():
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for handlers that only read: no commit at the end (a round trip to the database
    saved per request); whatever it began is rolled back when it goes back to the pool."""
    async with request.app.state.sessions() as session:
        yield session


async def get_lang(
    request: Request,
    lang: Annotated[
        Lang | None, Query(description="Label language; default from Accept-Language, else vi")
    ] = None,
) -> Lang:
    return choose_lang(request, lang)


def choose_lang(request: Request, lang: Lang | None) -> Lang:
    """`lang=` when given, else the preferred of Accept-Language."""
    if lang is not None:
        return lang
    return _lang_from_header(request.headers.get("accept-language", ""))


def _lang_from_header(header: str) -> Lang:
    """The preferred of vi/en in an Accept-Language header (q-values honoured), vi when neither."""
    best: tuple[float, Lang] = (0.0, "vi")
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("vi", "en"):
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality > best[0]:
            best = (quality, "vi" if primary == "vi" else "en")
    return best[1]


async def get_reference(request: Request) -> Snapshot:
    """Geography, indicators and releases as of now (app.reference), shared by every request."""
    snapshot: Snapshot = await request.app.state.reference.current()
    return snapshot


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReferenceDep = Annotated[Snapshot, Depends(get_reference)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
LangDep = Annotated[Lang, Depends(get_lang)]
CursorQuery = Annotated[
    str | None, Query(description="Opaque cursor from the `next` link of a previous page")
]


async def page_size(
    settings: SettingsDep,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size; bounded by the server's maximum")
    ] = None,
) -> int:
    return choose_page_size(settings, limit)


def choose_page_size(settings: Settings, limit: int | None) -> int:
    """The page size asked for (at least 1, checked by the caller's declaration), within the maximum."""
    if limit is None:
        return settings.default_page_size
    if limit > settings.max_page_size:
        raise InvalidParameter(f"limit {limit} is above the maximum page size {settings.max_page_size}")
    return limit


PageSizeDep = Annotated[int, Depends(page_size)]


def next_link(request: Request, cursor: str | None) -> str | None:
    """The current URL with `cursor` replaced: what a client follows for the next page."""
    if cursor is None:
        return None
    return str(request.url.include_query_params(cursor=cursor))

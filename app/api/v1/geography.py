"""Routes for geography versions and areas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import CursorQuery, LangDep, PageSizeDep, SessionDep, next_link
from app.api.v1.schemas import (
    AreaDetailOut,
    AreaList,
    AreaOut,
    AreaRef,
    GeographyList,
    GeographyOut,
    LinkedAreaList,
    LinkedAreaOut,
)
from app.paging import decode_cursor, encode_cursor
from app.repositories.geography import GeographyRepository
from app.services.geography import GeographyService

router = APIRouter(tags=["geography"])

GeographyPath = Annotated[str, Path(description="Geography version id", examples=["vn-2025-01"])]
CodePath = Annotated[str, Path(description="GSO code of the area", examples=["24"])]


def _service(session: SessionDep) -> GeographyService:
    return GeographyService(GeographyRepository(session))


@router.get("/geographies", operation_id="listGeographies", response_model=GeographyList)
async def list_geographies(session: SessionDep, lang: LangDep) -> GeographyList:
    """Geography versions: the units in force until 30/06/2025 (3 levels) and from 01/07/2025 (2 levels)."""
    items = [GeographyOut.of(s, lang) for s in await _service(session).list_geographies()]
    return GeographyList(items=items, total=len(items))


@router.get("/areas", operation_id="listAreas", response_model=AreaList)
async def list_areas(
    request: Request,
    session: SessionDep,
    lang: LangDep,
    limit: PageSizeDep,
    geography: Annotated[str, Query(description="Geography version id", examples=["vn-2025-07"])],
    level: Annotated[
        str | None, Query(description="province, district or commune", examples=["province"])
    ] = None,
    parent: Annotated[str | None, Query(description="Code of the parent area", examples=["24"])] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="Name search, accent-insensitive", examples=["thanh hoa"]),
    ] = None,
    cursor: CursorQuery = None,
) -> AreaList:
    """Areas of one geography version, filtered by level, parent and name, paged by code."""
    page = await _service(session).list_areas(geography, level, parent, q, decode_cursor(cursor), limit)
    following = encode_cursor(page.next_after) if page.next_after else None
    return AreaList(
        items=[AreaOut.full(a, lang) for a in page.items],
        total=page.total,
        next=next_link(request, following),
    )


@router.get("/areas/{geography}/{code}", operation_id="getArea", response_model=AreaDetailOut)
async def get_area(
    session: SessionDep, lang: LangDep, geography: GeographyPath, code: CodePath
) -> AreaDetailOut:
    """One area with its parent and children."""
    detail = await _service(session).area_detail(geography, code)
    return AreaDetailOut(
        **AreaOut.full(detail.area, lang).model_dump(),
        parent=AreaRef.of(detail.parent) if detail.parent else None,
        children=[AreaRef.of(c) for c in detail.children],
    )


@router.get(
    "/areas/{geography}/{code}/successors", operation_id="listAreaSuccessors", response_model=LinkedAreaList
)
async def list_successors(session: SessionDep, geography: GeographyPath, code: CodePath) -> LinkedAreaList:
    """Where an area went in newer geography versions, through GSO's official crosswalk.

    A commune lists the new communes it went to, with GSO's change note and the population share where
    the table states it. A province lists new provinces and a district new communes, with the number
    of commune links behind each.
    """
    service = _service(session)
    area = await service.require_area(geography, code)
    items = [LinkedAreaOut.of(link) for link in await service.successors(geography, code)]
    return LinkedAreaList(area=AreaRef.of(area), items=items, total=len(items))


@router.get(
    "/areas/{geography}/{code}/predecessors",
    operation_id="listAreaPredecessors",
    response_model=LinkedAreaList,
)
async def list_predecessors(session: SessionDep, geography: GeographyPath, code: CodePath) -> LinkedAreaList:
    """Which areas of older geography versions an area came from, through GSO's official crosswalk."""
    service = _service(session)
    area = await service.require_area(geography, code)
    items = [LinkedAreaOut.of(link) for link in await service.predecessors(geography, code)]
    return LinkedAreaList(area=AreaRef.of(area), items=items, total=len(items))

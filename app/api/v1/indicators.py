"""Routes for the indicator catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import LangDep, SessionDep
from app.api.v1.schemas import IndicatorDetailOut, IndicatorList, IndicatorOut
from app.repositories.indicators import IndicatorRepository
from app.services.indicators import IndicatorService

router = APIRouter(tags=["indicators"])


def _service(session: SessionDep) -> IndicatorService:
    return IndicatorService(IndicatorRepository(session))


@router.get("/indicators", operation_id="listIndicators", response_model=IndicatorList)
async def list_indicators(
    session: SessionDep,
    lang: LangDep,
    q: Annotated[
        str | None,
        Query(max_length=100, description="Search code and names, accent-insensitive", examples=["sinh"]),
    ] = None,
    topic: Annotated[str | None, Query(description="Topic", examples=["fertility"])] = None,
) -> IndicatorList:
    """The portal's indicators, each tied to an entry of the official population indicator system."""
    items = [IndicatorOut.of(i, lang) for i in await _service(session).list_indicators(q, topic)]
    return IndicatorList(items=items, total=len(items))


@router.get("/indicators/{code}", operation_id="getIndicator", response_model=IndicatorDetailOut)
async def get_indicator(
    session: SessionDep,
    lang: LangDep,
    code: Annotated[str, Path(description="Indicator code", examples=["TFR"])],
) -> IndicatorDetailOut:
    """One indicator: names, formula, unit, breakdowns, and its official definition and legal basis."""
    return IndicatorDetailOut.full(await _service(session).require_indicator(code), lang)

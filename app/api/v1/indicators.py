"""Routes for the indicator catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import LangDep, ReferenceDep, SessionDep, SettingsDep
from app.api.v1.schemas import AvailabilityOut, IndicatorDetailOut, IndicatorList, IndicatorOut
from app.repositories.indicators import IndicatorRepository
from app.services.catalog import CatalogService
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
    settings: SettingsDep,
    reference: ReferenceDep,
    lang: LangDep,
    code: Annotated[str, Path(description="Indicator code", examples=["TFR"])],
) -> IndicatorDetailOut:
    """One indicator: names, formula, unit, breakdowns, its official definition and legal basis, and
    what the current release offers (periods, areas, and the detail each access tier gets)."""
    indicator = reference.require_indicator(code)
    detail = IndicatorDetailOut.full(indicator, lang)
    catalog = CatalogService(session, settings.max_cells, reference)
    release = await catalog.current_release()
    if release is not None and indicator.supported:
        found = catalog.availability(release, indicator)
        detail.availability = AvailabilityOut(
            release=found.release_id,
            periods=found.periods,
            areas=found.areas,
            breakdowns=found.breakdowns,
            detail=found.detail,
        )
    return detail

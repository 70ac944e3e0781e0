"""Routes describing what can be asked: periods of the current release and a DCAT catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import ReferenceDep, SessionDep, SettingsDep
from app.errors import UnknownRelease
from app.services.catalog import CatalogService

router = APIRouter(tags=["catalog"])


class PeriodsOut(BaseModel):
    release: str
    year: list[str] = Field(examples=[["2021", "2022"]])
    quarter: list[str] = Field(examples=[["2021-Q1"]])
    month: list[str] = Field(examples=[["2021-01"]])


@router.get("/periods", operation_id="listPeriods", response_model=PeriodsOut)
async def list_periods(
    session: SessionDep,
    settings: SettingsDep,
    reference: ReferenceDep,
    release: Annotated[str | None, Query(description="A release id (default: the newest)")] = None,
) -> PeriodsOut:
    """Whole years, quarters and months the release covers: the periods `/v1/data` answers."""
    service = CatalogService(session, settings.max_cells, reference)
    found = await service.current_release(release)
    if found is None:
        raise UnknownRelease(
            "no register release is published yet; load one with `portal ingest` or `portal demo`"
        )
    return PeriodsOut(release=found.id, **service.periods(found))


@router.get("/catalog", operation_id="getCatalog", response_model=dict[str, Any])
async def get_catalog(session: SessionDep, settings: SettingsDep, reference: ReferenceDep) -> dict[str, Any]:
    """A DCAT (JSON-LD) catalogue of the indicators and their distributions, for data portals to harvest."""
    return await CatalogService(session, settings.max_cells, reference).dcat(
        settings.public_base_url.rstrip("/")
    )

"""Routes describing published releases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.api.deps import SessionDep
from app.repositories.releases import ReleaseRepository
from app.services.releases import ReleaseService, ReleaseSummary

router = APIRouter(tags=["releases"])


class ReleaseOut(BaseModel):
    id: str = Field(examples=["register-20261123T020000-1a2b3c4d"])
    kind: str = Field(description="register (from the population register) or census (2019 census totals)")
    current: bool = Field(description="Served when a request names no release")
    synthetic: bool = Field(description="Built from generated data, not from a real register")
    created_at: datetime
    period_start: str = Field(description="First month covered", examples=["2021-01"])
    period_end: str = Field(description="Last month covered", examples=["2025-06"])
    geographies: list[str]
    areas: dict[str, dict[str, int]] = Field(description="Areas covered, by geography and level")
    sources: list[dict[str, Any]]
    row_counts: dict[str, Any] = Field(description="Records read, accepted and rejected")
    href: str

    @classmethod
    def of(cls, summary: ReleaseSummary) -> ReleaseOut:
        return cls(**summary.fields(), href=f"/v1/releases/{summary.release.id}")


class ReleaseList(BaseModel):
    items: list[ReleaseOut]
    total: int


def _service(session: SessionDep) -> ReleaseService:
    return ReleaseService(ReleaseRepository(session))


@router.get("/releases", operation_id="listReleases", response_model=ReleaseList)
async def list_releases(session: SessionDep) -> ReleaseList:
    """Published releases, newest first. Older releases stay readable with `release=` for citations."""
    items = [ReleaseOut.of(s) for s in await _service(session).list_releases()]
    return ReleaseList(items=items, total=len(items))


@router.get("/releases/{release_id}", operation_id="getRelease", response_model=ReleaseOut)
async def get_release(
    session: SessionDep,
    release_id: Annotated[str, Path(description="Release id", examples=["census-2019-0a1b2c3d"])],
) -> ReleaseOut:
    """One release: its sources, time span, areas and row counts."""
    return ReleaseOut.of(await _service(session).get_release(release_id))

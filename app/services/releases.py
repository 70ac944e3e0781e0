"""Published releases: what each holds and where it came from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.cube import month_label
from app.errors import UnknownRelease
from app.models import Release
from app.repositories.releases import ReleaseRepository


@dataclass(frozen=True)
class ReleaseSummary:
    release: Release
    current: bool  # the one served when a request names no release

    @property
    def sources(self) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = json.loads(self.release.sources)
        return loaded

    @property
    def row_counts(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.release.row_counts)
        return loaded

    @property
    def area_counts(self) -> dict[str, dict[str, int]]:
        areas: dict[str, dict[str, str]] = json.loads(self.release.note or "{}").get("areas", {})
        counts: dict[str, dict[str, int]] = {}
        for geography, levels in areas.items():
            for level in levels.values():
                counts.setdefault(geography, {}).setdefault(level, 0)
                counts[geography][level] += 1
        return counts

    @property
    def period(self) -> tuple[str, str]:
        first = self.release.first_month if self.release.kind == "census" else self.release.first_month + 1
        return month_label(first), month_label(self.release.last_month)

    def fields(self) -> dict[str, Any]:
        """The release as REST and GraphQL both show it."""
        start, end = self.period
        return {
            "id": self.release.id,
            "kind": self.release.kind,
            "current": self.current,
            "synthetic": self.release.synthetic,
            "created_at": self.release.created_at,
            "period_start": start,
            "period_end": end,
            "geographies": self.release.geographies.split(","),
            "areas": self.area_counts,
            "sources": self.sources,
            "row_counts": self.row_counts,
        }


class ReleaseService:
    def __init__(self, repository: ReleaseRepository) -> None:
        self.repository = repository

    async def list_releases(self) -> list[ReleaseSummary]:
        releases: Sequence[Release] = await self.repository.list_releases()
        current = {
            kind: next((r.id for r in releases if r.kind == kind), None)
            for kind in {r.kind for r in releases}
        }
        return [ReleaseSummary(r, current.get(r.kind) == r.id) for r in releases]

    async def get_release(self, release_id: str) -> ReleaseSummary:
        for summary in await self.list_releases():
            if summary.release.id == release_id:
                return summary
        raise UnknownRelease(f"no release '{release_id}'; list them at /v1/releases")

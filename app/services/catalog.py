"""What the current release offers: periods, per-indicator availability by tier, and a DCAT catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import UnknownRelease
from app.models import Indicator, Release
from app.privacy.lattice import LATTICES
from app.query.plan import INDICATOR_READS, describe
from app.query.service import QueryService
from app.reference import Snapshot
from app.services.bulk import whole_periods
from app.services.data import LEVELS
from auth.principal import Tier


@dataclass(frozen=True)
class Availability:
    release_id: str
    periods: dict[str, list[str]]
    areas: dict[str, dict[str, int]]  # geography -> level -> areas covered
    breakdowns: list[str]
    detail: dict[str, list[str]]  # tier -> how its atoms publish each measure the indicator reads


class CatalogService:
    def __init__(self, session: AsyncSession, max_cells: int, reference: Snapshot) -> None:
        self.queries = QueryService(session, max_cells, reference)
        self.reference = reference

    async def current_release(self, release_id: str | None = None) -> Release | None:
        try:
            return await self.queries.resolve_release(release_id)
        except UnknownRelease:
            if release_id is not None:
                raise
            return None

    @staticmethod
    def periods(release: Release) -> dict[str, list[str]]:
        if release.kind == "census":
            return {"year": ["2019"], "quarter": [], "month": []}
        return whole_periods(release.first_month + 1, release.last_month)

    def availability(self, release: Release, indicator: Indicator) -> Availability:
        areas = {
            geography: {
                level: len(codes)
                for level in LEVELS
                if (codes := self.queries.covered_areas(release, geography, level))
            }
            for geography in release.geographies.split(",")
        }
        measures = {r.measure for r in INDICATOR_READS.get(indicator.code, ())}
        detail = {
            tier.value: [describe(a) for a in lattice if a.measure.name in measures]
            for tier, lattice in LATTICES.items()
        }
        detail[Tier.INTERNAL.value] = ["exact counts by commune x month x sex x single year of age (audited)"]
        return Availability(
            release.id,
            self.periods(release),
            areas,
            [d for d in indicator.dimensions.split(",") if d],
            detail,
        )

    async def dcat(self, base_url: str) -> dict[str, Any]:
        """A DCAT-AP style JSON-LD catalogue: one dataset per computed indicator, four distributions."""
        release = await self.current_release()
        datasets = []
        for indicator in sorted(self.reference.indicators.values(), key=lambda i: i.code):
            if not indicator.supported:
                continue
            data = f"{base_url}/v1/data/{indicator.code}"
            dataset: dict[str, Any] = {
                "@type": "dcat:Dataset",
                "@id": f"{base_url}/v1/indicators/{indicator.code}",
                "dct:identifier": indicator.code,
                "dct:title": [
                    {"@language": "vi", "@value": indicator.name_vi},
                    {"@language": "en", "@value": indicator.name_en},
                ],
                "dct:description": [{"@language": "vi", "@value": indicator.definition}],
                "dcat:theme": indicator.topic,
                "dct:accrualPeriodicity": indicator.periodicity,
                "dct:conformsTo": indicator.legal_basis,
                "dct:spatial": "Việt Nam (GSO administrative units)",
                "dcat:distribution": [
                    {
                        "@type": "dcat:Distribution",
                        "dcat:accessURL": f"{data}?format={fmt}",
                        "dcat:mediaType": media,
                    }
                    for fmt, media in (
                        ("json", "application/json"),
                        ("csv", "text/csv"),
                        ("jsonstat", "application/json"),
                        ("sdmx-csv", "application/vnd.sdmx.data+csv"),
                    )
                ]
                + [
                    {
                        "@type": "dcat:Distribution",
                        "dcat:downloadURL": f"{base_url}/v1/bulk/{indicator.code}.csv.gz",
                        "dcat:mediaType": "application/gzip",
                    }
                ],
            }
            if release is not None:
                periods = self.periods(release)
                years = periods["year"] or periods["month"]
                dataset["dct:temporal"] = (
                    {"dcat:startDate": years[0], "dcat:endDate": years[-1]} if years else None
                )
                dataset["dct:modified"] = release.created_at.isoformat()
            datasets.append(dataset)
        return {
            "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/"},
            "@type": "dcat:Catalog",
            "@id": f"{base_url}/v1/catalog",
            "dct:title": [
                {"@language": "vi", "@value": "Cổng dữ liệu dân số: chỉ tiêu dân số tổng hợp"},
                {"@language": "en", "@value": "Population data portal: aggregated population indicators"},
            ],
            "dct:license": "Open data (Decree 47/2020/NĐ-CP): aggregated, privacy-filtered",
            "dcat:dataset": datasets,
        }

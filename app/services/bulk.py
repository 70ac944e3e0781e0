"""Bulk download: every publishable cell of an indicator for a tier, streamed as gzip-compressed CSV.

The answer is computed area batch by area batch through the same data service as `/v1/data`, each
batch in its own short session, and compressed as it goes: nothing holds the whole table.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cube import month_label
from app.formats.observations import Lang
from app.formats.tables import render_csv
from app.query.plan import FinerThanPublished
from app.query.service import QueryService
from app.reference import Snapshot
from app.services.data import LEVELS, DataRequest, DataService
from auth.principal import Tier


def whole_periods(first_month: int, last_month: int) -> dict[str, list[str]]:
    """Years, quarters and months lying wholly within [first_month, last_month] (month indexes)."""
    months = [month_label(m) for m in range(first_month, last_month + 1)]
    quarters = [
        f"{m // 12}-Q{m % 12 // 3 + 1}"
        for m in range(first_month, last_month - 1)
        if m % 3 == 0 and m + 2 <= last_month
    ]
    years = [str(m // 12) for m in range(first_month, last_month - 10) if m % 12 == 0]
    return {"year": years, "quarter": quarters, "month": months}


@dataclass
class BulkStream:
    indicator: str
    release_id: str
    sessions: async_sessionmaker[AsyncSession]
    max_cells: int
    reference: Snapshot
    geography: str
    areas: list[str]
    periods: list[str]
    breakdowns: list[str | None]
    tier: Tier
    lang: Lang

    async def chunks(self) -> AsyncIterator[bytes]:
        gzip = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
        header = True
        for by in self.breakdowns:
            groups = 2 if by else 1
            batch = max(1, self.max_cells // (groups * max(1, len(self.periods))))
            for start in range(0, len(self.areas), batch):
                areas = self.areas[start : start + batch]
                for periods in _period_runs(self.periods, self.max_cells // (groups * len(areas))):
                    request = DataRequest(
                        self.indicator, self.geography, ",".join(periods), ",".join(areas), by=by,
                        release=self.release_id,
                    )  # fmt: skip
                    async with self.sessions() as session:
                        try:
                            labelled = await DataService(
                                session, self.max_cells, self.reference
                            ).observations(request, self.tier)
                        except FinerThanPublished:
                            continue  # not published at this detail for the tier: left out
                    data = gzip.compress(render_csv(labelled, self.lang, header=header))
                    header = False
                    if data:
                        yield data
        yield gzip.flush()


def _period_runs(periods: list[str], size: int) -> list[list[str]]:
    """Periods of one kind together (a query mixes no kinds the atoms answer differently)."""
    by_kind: dict[str, list[str]] = {}
    for p in periods:
        by_kind.setdefault("quarter" if "-Q" in p else "month" if "-" in p else "year", []).append(p)
    size = max(1, size)
    return [run[i : i + size] for run in by_kind.values() for i in range(0, len(run), size)]


class BulkService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], max_cells: int, reference: Snapshot
    ) -> None:
        self.sessions = sessions
        self.max_cells = max_cells
        self.reference = reference

    async def prepare(
        self, indicator: str, geography: str, release_id: str | None, tier: Tier, lang: Lang
    ) -> BulkStream:
        """Check the request and plan the stream; errors surface here, before any byte is sent."""
        found = self.reference.require_indicator(indicator)
        async with self.sessions() as session:
            queries = QueryService(session, self.max_cells, self.reference)
            release = await queries.resolve_release(release_id)
            await DataService(session, self.max_cells, self.reference).query(
                DataRequest(found.code, geography, "2019", level="province", release=release.id)
            )
            areas = [a for level in LEVELS for a in queries.covered_areas(release, geography, level)]
        if release.kind == "census":
            periods = ["2019"]
        else:
            spans = whole_periods(release.first_month + 1, release.last_month)
            periods = spans["year"] + spans["quarter"] + spans["month"]
        dimensions = set(found.dimensions.split(","))
        breakdowns: list[str | None] = (
            [None, "sex"] if "sex" in dimensions and release.kind != "census" else [None]
        )
        return BulkStream(
            found.code,
            release.id,
            self.sessions,
            self.max_cells,
            self.reference,
            geography,
            areas,
            periods,
            breakdowns,
            tier,
            lang,
        )

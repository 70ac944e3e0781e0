"""The data service: request parameters -> one query of the query service -> a released result with labels.

REST and GraphQL (and the explorer page, when it is built) call this, so that parsing of areas,
periods and breakdowns, the expansion of `parent` + `level`, and the labels are the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidParameter, UnknownArea, UnknownGeography
from app.models import Area
from app.privacy.released import ReleasedResult
from app.query.periods import parse_periods
from app.query.rows import PublishedRows
from app.query.service import BREAKDOWNS, SEX_CODES, ObservationQuery, QueryService, parse_age_ranges
from app.reference import Snapshot
from auth.principal import Tier

MAX_AREAS = 1000  # codes one request may list (a URL stays under 8 KB); larger sets: parent + level, or bulk
LEVELS = ("province", "district", "commune")


@dataclass(frozen=True)
class DataRequest:
    """What a caller asks for, as the API spells it (strings, comma-separated lists)."""

    indicator: str
    geography: str
    period: str
    area: str | None = None
    parent: str | None = None
    level: str | None = None
    sex: str | None = None
    age: str | None = None
    by: str | None = None
    release: str | None = None


@dataclass(frozen=True)
class LabelledResult:
    result: ReleasedResult
    query: ObservationQuery
    areas: dict[str, Area]  # the queried areas, for names and levels


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class DataService:
    def __init__(
        self, session: AsyncSession, max_cells: int, reference: Snapshot, rows: PublishedRows | None = None
    ) -> None:
        self.reference = reference
        self.queries = QueryService(session, max_cells, reference, rows)

    async def query(self, request: DataRequest) -> ObservationQuery:
        """Validate and normalise a request into a query (areas in the order given, periods expanded)."""
        if self.reference.get_geography(request.geography) is None:
            known = ", ".join(g.id for g in self.reference.geographies)
            raise UnknownGeography(f"no geography '{request.geography}'; known versions: {known}")
        areas = await self._areas(request)
        if request.sex is not None and request.sex not in SEX_CODES:
            raise InvalidParameter(f"sex must be one of {', '.join(SEX_CODES)}, not '{request.sex}'")
        by = _split(request.by)
        unknown = [b for b in by if b not in BREAKDOWNS]
        if unknown:
            raise InvalidParameter(f"unknown breakdown {', '.join(unknown)}; use {', '.join(BREAKDOWNS)}")
        return ObservationQuery(
            indicator=request.indicator,
            geography=request.geography,
            areas=tuple(areas),
            periods=tuple(parse_periods(request.period)),
            sex=request.sex,
            age=parse_age_ranges(request.age or ""),
            by=tuple(dict.fromkeys(by)),
            release=request.release,
        )

    async def _areas(self, request: DataRequest) -> list[str]:
        codes = _split(request.area)
        if codes and (request.parent or request.level):
            raise InvalidParameter("give either `area` or `parent` with `level`, not both")
        if codes:
            if len(codes) > MAX_AREAS:
                raise InvalidParameter(
                    f"{len(codes)} areas listed; at most {MAX_AREAS}: use parent + level or the bulk download"
                )
            return list(dict.fromkeys(codes))
        if request.level is None:
            raise InvalidParameter("give `area` (one or more codes) or `level` (with an optional `parent`)")
        if request.level not in LEVELS:
            raise InvalidParameter(f"level must be one of {', '.join(LEVELS)}, not '{request.level}'")
        if request.parent is None:
            release = await self.queries.resolve_release(request.release)
            covered = self.queries.covered_areas(release, request.geography, request.level)
            if not covered:
                raise InvalidParameter(
                    f"release {release.id} has no {request.level} areas in {request.geography}; "
                    f"it is expressed in {release.geographies}"
                )
            return covered
        parent = self.reference.get_area(request.geography, request.parent)
        if parent is None:
            raise UnknownArea(f"no area with code '{request.parent}' in geography {request.geography}")
        codes = self.reference.descendant_codes(request.geography, request.parent, request.level)
        if not codes:
            raise InvalidParameter(
                f"{parent.name} ({parent.level}) has no {request.level} areas below it in {request.geography}"
            )
        return codes

    async def observations(self, request: DataRequest, tier: Tier) -> LabelledResult:
        query = await self.query(request)
        result = await self.queries.observations(query, tier)
        areas = self.reference.get_areas(query.geography, list(query.areas))
        return LabelledResult(result, query, areas)

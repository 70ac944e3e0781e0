"""Geography versions, areas and their successors/predecessors across versions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import InvalidParameter, UnknownArea, UnknownGeography
from app.models import Area, AreaLink, Geography
from app.paging import Page
from app.repositories.geography import AreaFilter, GeographyRepository
from app.text import fold

UNIT_TYPE_EN = {
    "tỉnh": "province",
    "thành phố trung ương": "centrally-run city",
    "thành phố": "provincial city",
    "quận": "urban district",
    "huyện": "rural district",
    "thị xã": "town",
    "xã": "commune",
    "phường": "ward",
    "thị trấn": "township",
    "đặc khu": "special zone",
}


def unit_type_label(unit_type: str, lang: str) -> str:
    """A Vietnamese unit type in `lang`."""
    return unit_type if lang == "vi" else UNIT_TYPE_EN.get(unit_type, unit_type)


def area_fields(area: Area) -> dict[str, Any]:
    """An area's own attributes as REST and GraphQL both show them: `urban` only for communes."""
    return {
        "geography": area.geography,
        "code": area.code,
        "name": area.name,
        "short_name": area.short_name,
        "name_ascii": area.name_ascii,
        "level": area.level,
        "unit_type": area.unit_type,
        "parent_code": area.parent_code,
        "urban": area.urban if area.level == "commune" else None,
    }


@dataclass(frozen=True)
class GeographySummary:
    geography: Geography
    area_counts: dict[str, int]


@dataclass(frozen=True)
class AreaDetail:
    area: Area
    parent: Area | None
    children: Sequence[Area]


@dataclass(frozen=True)
class LinkedArea:
    """An area of another geography version reached through the crosswalk."""

    area: Area | None  # None when the crosswalk names a code its code list does not hold
    geography: str
    code: str
    kind: str  # the crosswalk's kind for a commune link; "aggregate" for higher levels
    population_share: float | None
    n_targets: int | None
    note_vi: str | None
    communes: int  # how many commune links stand behind this entry


class GeographyService:
    def __init__(self, repository: GeographyRepository) -> None:
        self.repository = repository

    async def list_geographies(self) -> list[GeographySummary]:
        return [
            GeographySummary(g, await self.repository.count_areas_by_level(g.id))
            for g in await self.repository.list_geographies()
        ]

    async def require_geography(self, geography_id: str) -> Geography:
        geography = await self.repository.get_geography(geography_id)
        if geography is None:
            known = ", ".join(g.id for g in await self.repository.list_geographies())
            raise UnknownGeography(f"geography '{geography_id}' does not exist; known: {known}")
        return geography

    async def list_areas(
        self,
        geography_id: str,
        level: str | None,
        parent: str | None,
        q: str | None,
        after: str | None,
        limit: int,
    ) -> Page[Area]:
        geography = await self.require_geography(geography_id)
        levels = geography.levels.split(",")
        if level is not None and level not in levels:
            raise InvalidParameter(
                f"level '{level}' does not exist in {geography_id}; its levels are {', '.join(levels)}"
            )
        if parent is not None:
            await self.require_area(geography_id, parent)
        folded = fold(q) if q else None
        where = AreaFilter(geography_id, level, parent, folded or None)
        return await self.repository.list_areas(where, after, limit)

    async def require_area(self, geography_id: str, code: str) -> Area:
        area = await self.repository.get_area(geography_id, code)
        if area is None:
            await self.require_geography(geography_id)
            raise UnknownArea(f"no area with code '{code}' in geography {geography_id}")
        return area

    async def area_detail(self, geography_id: str, code: str) -> AreaDetail:
        area = await self.require_area(geography_id, code)
        parent = await self.repository.get_area(geography_id, area.parent_code) if area.parent_code else None
        return AreaDetail(area, parent, await self.repository.children(geography_id, code))

    async def areas(self, geography_id: str, codes: Sequence[str]) -> dict[str, Area]:
        """Several areas of one version at once (unknown codes are left out): for batched lookups."""
        return await self.repository.get_areas(geography_id, codes)

    async def children_of(self, geography_id: str, codes: Sequence[str]) -> dict[str, list[Area]]:
        """The children of several areas at once, by parent code."""
        return await self.repository.children_of(geography_id, codes)

    async def successors(self, geography_id: str, code: str) -> list[LinkedArea]:
        """Where an area went in newer geography versions."""
        return await self._linked(geography_id, code, outgoing=True)

    async def predecessors(self, geography_id: str, code: str) -> list[LinkedArea]:
        """Which areas of older geography versions an area came from."""
        return await self._linked(geography_id, code, outgoing=False)

    async def _linked(self, geography_id: str, code: str, outgoing: bool) -> list[LinkedArea]:
        area = await self.require_area(geography_id, code)
        result: list[LinkedArea] = []
        for other in await self.repository.linked_geographies(geography_id, outgoing):
            communes = (
                [code]
                if area.level == "commune"
                else await self.repository.descendant_codes(geography_id, code, "commune")
            )
            if outgoing:
                links = await self.repository.links_from(geography_id, communes, other)
                far_codes = [link.to_code for link in links]
            else:
                links = await self.repository.links_to(geography_id, communes, other)
                far_codes = [link.from_code for link in links]
            far_areas = await self.repository.get_areas(other, sorted(set(far_codes)))
            if area.level == "commune":
                result.extend(_commune_links(other, links, far_codes, far_areas))
            else:
                result.extend(await self._rolled_up(other, area.level, far_codes, far_areas))
        return result

    async def _rolled_up(
        self, other: str, level: str, far_codes: list[str], far_areas: dict[str, Area]
    ) -> list[LinkedArea]:
        """Commune links of a district or province, gathered at the matching level of the other version.

        A province maps to provinces; a district (a level the 2025-07 version no longer has) maps to
        the communes its communes went to.
        """
        counts: dict[str, int] = defaultdict(int)
        for far_code in far_codes:
            far = far_areas.get(far_code)
            target = far_code
            if level == "province" and far is not None:
                target = await self._ancestor_at(other, far, "province")
            counts[target] += 1
        targets = await self.repository.get_areas(other, sorted(counts))
        return [
            LinkedArea(targets.get(c), other, c, "aggregate", None, None, None, n)
            for c, n in sorted(counts.items())
        ]

    async def _ancestor_at(self, geography_id: str, area: Area, level: str) -> str:
        current: Area | None = area
        while current is not None and current.level != level and current.parent_code:
            current = await self.repository.get_area(geography_id, current.parent_code)
        return current.code if current is not None else area.code


def _commune_links(
    other: str, links: Sequence[AreaLink], far_codes: list[str], far_areas: dict[str, Area]
) -> list[LinkedArea]:
    return [
        LinkedArea(
            far_areas.get(far_code),
            other,
            far_code,
            link.kind,
            link.population_share,
            link.n_targets,
            link.note_vi,
            1,
        )
        for link, far_code in zip(links, far_codes, strict=True)
    ]

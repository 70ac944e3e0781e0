"""Per-request DataLoaders: a list of areas with parents, children or observations costs one store call per
kind and level, not one per area."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.models import Area
from app.privacy.released import ReleasedObservation, ReleasedResult
from app.services.data import DataRequest

if TYPE_CHECKING:
    from schema.context import PortalContext

AreaKey = tuple[str, str]  # geography, code
ObservationsKey = tuple[DataRequest, str]  # the question without its area, and the area's code


@dataclass(frozen=True)
class AreaObservations:
    """One area's share of a released result: its observations and the result's metadata."""

    result: ReleasedResult
    observations: list[ReleasedObservation]


class Loaders:
    def __init__(self, context: PortalContext) -> None:
        self._context = context
        self.area = DataLoader[AreaKey, Area | None](self._areas)
        self.children = DataLoader[AreaKey, list[Area]](self._children)
        # Sibling areas asking the same question become one service call.
        self.observations = DataLoader[ObservationsKey, AreaObservations | BaseException](self._observations)

    async def _areas(self, keys: list[AreaKey]) -> Sequence[Area | None]:
        found: dict[AreaKey, Area] = {}
        for geography, codes in _by_geography(keys).items():
            areas = self._context.reference.get_areas(geography, codes)
            found.update({(geography, code): area for code, area in areas.items()})
        return [found.get(key) for key in keys]

    async def _children(self, keys: list[AreaKey]) -> Sequence[list[Area]]:
        found: dict[AreaKey, list[Area]] = {}
        for geography, codes in _by_geography(keys).items():
            children = self._context.reference.children_of(geography, codes)
            found.update({(geography, code): areas for code, areas in children.items()})
        return [found.get(key, []) for key in keys]

    async def _observations(self, keys: list[ObservationsKey]) -> Sequence[AreaObservations | BaseException]:
        groups: dict[DataRequest, list[str]] = defaultdict(list)
        for shared, area in keys:
            groups[shared].append(area)
        answers: dict[ObservationsKey, AreaObservations | BaseException] = {}
        for shared, areas in groups.items():
            try:
                query = await self._context.store(
                    partial(self._context.data.query, replace(shared, area=",".join(dict.fromkeys(areas))))
                )
                await self._context.charge(query)
                result = await self._context.store(
                    partial(self._context.query_service.observations, query, self._context.principal.tier)
                )
            except Exception as exc:  # each field of the batch reports the error itself
                for area in areas:
                    answers[(shared, area)] = exc
                continue
            per_area: dict[str, list[ReleasedObservation]] = defaultdict(list)
            for observation in result.observations:
                per_area[observation.area].append(observation)
            for area in areas:
                answers[(shared, area)] = AreaObservations(result, per_area[area])
        return [answers[key] for key in keys]


def _by_geography(keys: Sequence[AreaKey]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for geography, code in keys:
        if code not in grouped[geography]:
            grouped[geography].append(code)
    return grouped

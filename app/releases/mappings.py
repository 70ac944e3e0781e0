"""Area mappings of a release: from the register's communes to every level of every geography version."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from app.models import Area, AreaLink
from app.releases.builder import AreaMapping

BANDO_POPULATION: Final = (
    Path(__file__).parents[2]
    / "connectors"
    / "data"
    / "geography"
    / "new_communes_2025_area_population_bando.csv"
)


@dataclass(frozen=True)
class ReleaseGeography:
    """The register's communes and the mappings the release is built for."""

    communes: list[str]
    mappings: list[AreaMapping]
    levels: dict[str, dict[str, str]]  # geography -> area code -> level
    partial: dict[str, list[str]] = field(default_factory=dict)  # geography -> areas only partly covered


def _weights() -> dict[str, float]:
    with BANDO_POPULATION.open(encoding="utf-8") as handle:
        return {row["new_ward_code"]: float(row["population_persons"] or 0) for row in csv.DictReader(handle)}


def plan_geography(
    geography: str,
    register_communes: set[str],
    areas: Sequence[Area],
    other_areas: dict[str, Sequence[Area]],
    links: dict[str, Sequence[AreaLink]],
) -> ReleaseGeography:
    """Mappings for each level of the register's geography and of every version linked to it.

    The register covers whole provinces: every commune of a province it has records in.
    """
    by_code = {a.code: a for a in areas}
    provinces = {_province_of(by_code, c) for c in register_communes}
    communes = sorted(
        a.code for a in areas if a.level == "commune" and _province_of(by_code, a.code) in provinces
    )
    index = {c: i for i, c in enumerate(communes)}
    mappings: list[AreaMapping] = []
    levels: dict[str, dict[str, str]] = {geography: {}}
    for level in ("commune", "district", "province"):
        targets = sorted({a for c in communes if (a := _ancestor(by_code, c, level)) is not None})
        if not targets:
            continue
        position = {t: i for i, t in enumerate(targets)}
        target = np.array([position[_ancestor(by_code, c, level) or ""] for c in communes], dtype=np.int64)
        mappings.append(AreaMapping(geography, level, targets, target))
        levels[geography].update(dict.fromkeys(targets, level))
    partial: dict[str, list[str]] = {}
    weights = _weights()
    for other, other_list in other_areas.items():
        mapped, other_levels, incomplete = _reexpress(
            other, communes, index, other_list, links[other], weights
        )
        mappings.extend(mapped)
        levels[other] = other_levels
        partial[other] = incomplete
    return ReleaseGeography(communes, mappings, levels, partial)


def _ancestor(by_code: dict[str, Area], code: str, level: str) -> str | None:
    area: Area | None = by_code.get(code)
    while area is not None and area.level != level:
        area = by_code.get(area.parent_code) if area.parent_code else None
    return area.code if area is not None else None


def _province_of(by_code: dict[str, Area], code: str) -> str:
    return _ancestor(by_code, code, "province") or ""


def _reexpress(
    other: str,
    communes: list[str],
    index: dict[str, int],
    other_areas: Sequence[Area],
    links: Sequence[AreaLink],
    weights: dict[str, float],
) -> tuple[list[AreaMapping], dict[str, str], list[str]]:
    """Communes and provinces of another version through the crosswalk.

    A commune split over several new ones sends each resident to one of them (by record key), in
    proportion to the shares the official table states, else to the new communes' populations.
    """
    by_code = {a.code: a for a in other_areas}
    targets_of: dict[str, list[AreaLink]] = defaultdict(list)
    for link in links:
        if link.from_code in index and link.to_code in by_code:
            targets_of[link.from_code].append(link)
    new_communes = sorted({link.to_code for group in targets_of.values() for link in group})
    position = {c: i for i, c in enumerate(new_communes)}
    target = np.full(len(communes), -1, dtype=np.int64)
    split_targets: dict[int, np.ndarray] = {}
    split_shares: dict[int, np.ndarray] = {}
    for code, group in targets_of.items():
        i = index[code]
        if len(group) == 1:
            target[i] = position[group[0].to_code]
            continue
        shares = np.array(
            [
                link.population_share if link.population_share is not None else weights.get(link.to_code, 0.0)
                for link in group
            ]
        )
        if shares.sum() <= 0:
            shares = np.ones(len(group))
        split_targets[i] = np.array([position[link.to_code] for link in group], dtype=np.int64)
        split_shares[i] = shares.astype(np.float64)
    commune_mapping = AreaMapping(other, "commune", new_communes, target, split_targets, split_shares)
    provinces = sorted({by_code[c].parent_code or "" for c in new_communes})
    province_position = {p: i for i, p in enumerate(provinces)}
    commune_to_province = np.array(
        [province_position[by_code[c].parent_code or ""] for c in new_communes], dtype=np.int64
    )
    province_mapping = AreaMapping(
        other,
        "province",
        provinces,
        np.where(target >= 0, commune_to_province[np.maximum(target, 0)], -1),
        {i: commune_to_province[t] for i, t in split_targets.items()},
        dict(split_shares),
    )
    # A new unit is fully covered when every old commune that fed it is in the register.
    fed_by: dict[str, set[str]] = defaultdict(set)
    for link in links:
        fed_by[link.to_code].add(link.from_code)
    incomplete = sorted(c for c in new_communes if not fed_by[c] <= set(index))
    incomplete_provinces = sorted({by_code[c].parent_code or "" for c in incomplete})
    full_province = {
        p for p in provinces if all(fed_by[a.code] <= set(index) for a in other_areas if a.parent_code == p)
    }
    incomplete_provinces = sorted(set(incomplete_provinces) | (set(provinces) - full_province))
    other_levels = dict.fromkeys(new_communes, "commune") | dict.fromkeys(provinces, "province")
    return [commune_mapping, province_mapping], other_levels, incomplete + incomplete_provinces

"""Loads the reference data shipped in `connectors/data/`: geography versions, the GSO crosswalk, indicators.

Rows that do not reconcile (a crosswalk code missing from its code list, a row without a commune
code) are stored and reported, never dropped.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Area, AreaLink, Geography, Indicator
from app.repositories.reference import SyncResult, replace_issues, sync_rows
from app.text import fold

DATA_DIR: Final = Path(__file__).parent / "data"
GEOGRAPHY_DIR: Final = DATA_DIR / "geography"
INDICATOR_DIR: Final = DATA_DIR / "indicators"

OLD, NEW = "vn-2025-01", "vn-2025-07"
URBAN_UNIT_TYPES: Final = frozenset({"phường", "thị trấn"})

GEOGRAPHIES: Final = (
    {
        "id": OLD,
        "name_vi": "Đơn vị hành chính theo danh mục GSO 04/01/2025 (63 tỉnh, 3 cấp)",
        "name_en": "Administrative units, GSO code list of 4 January 2025 (63 provinces, 3 levels)",
        "levels": "province,district,commune",
        "valid_from": date(2025, 1, 1),
        "valid_to": date(2025, 6, 30),
        "source": "GSO code list via PyPI vietnam-provinces 0.6.0 (see connectors/data/geography/README.md)",
    },
    {
        "id": NEW,
        "name_vi": "Đơn vị hành chính từ 01/07/2025 (34 tỉnh, 2 cấp)",
        "name_en": "Administrative units from 1 July 2025 (34 provinces, 2 levels)",
        "levels": "province,commune",
        "valid_from": date(2025, 7, 1),
        "valid_to": None,
        "source": "GSO code list via PyPI vietnam-provinces 2025.10.1 (see connectors/data/geography/README.md)",
    },
)


@dataclass
class LoadReport:
    """What a reference load changed, per table, and the rows it could not reconcile."""

    tables: dict[str, SyncResult] = field(default_factory=dict)
    unreconciled: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(result.changed for result in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "tables": {name: vars(result) for name, result in self.tables.items()},
            "unreconciled": {
                name: {"count": len(rows), "rows": rows} for name, rows in self.unreconciled.items()
            },
        }


def _read_csv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def read_units(geography: str) -> list[dict[str, Any]]:
    rows = []
    for row in _read_csv(GEOGRAPHY_DIR / f"units_{geography}.csv"):
        rows.append(
            {
                "geography": geography,
                "code": row["code"],
                "level": row["level"],
                "parent_code": row["parent_code"] or None,
                "name": row["name"],
                "short_name": row["short_name"],
                "name_ascii": fold(row["name"]),
                "unit_type": row["unit_type"],
                "urban": row["level"] == "commune" and row["unit_type"] in URBAN_UNIT_TYPES,
            }
        )
    return rows


def link_kind(change_note: str) -> str:
    """Classify GSO's free-text change note (it has typos and double spaces, hence the folding)."""
    note = fold(change_note)
    if "toan bo dan so" in note:
        return "partial_area_whole_population"
    if "mot phan dan so" in note:
        return "partial_population"
    if "mot phan dien tich" in note:
        return "partial_area"
    if "mot phan" in note:
        return "partial"
    if "toan bo" in note:
        return "whole"
    if "giu nguyen" in note:
        return "unchanged"
    if "doi ten" in note:
        return "renamed"
    if "doi loai hinh" in note:
        return "retyped"
    return "other"


def read_crosswalk(
    old_codes: set[str], new_codes: set[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Crosswalk links old commune -> new commune, and the rows that do not reconcile."""
    links: dict[tuple[str, str], dict[str, Any]] = {}
    issues: list[tuple[str, str]] = []
    for line, row in enumerate(_read_csv(GEOGRAPHY_DIR / "crosswalk_old_ward_to_new_ward_2025.csv"), start=2):
        old, new = row["old_ward_code"], row["new_ward_code"]
        where = f"line {line}: {row['old_ward_name']} ({row['old_district_name']}) -> {row['new_ward_name']}"
        if not old:
            issues.append(
                (f"line-{line}", f"{where}: no old commune code (district-level row); kept out of links")
            )
            continue
        problems = []
        if old not in old_codes:
            problems.append(f"old code {old} is not a commune of {OLD}")
        if new not in new_codes:
            problems.append(f"new code {new} is not a commune of {NEW}")
        if problems:
            issues.append((f"{old}->{new}", f"{where}: {'; '.join(problems)}; {row['qa_note']}".rstrip("; ")))
        if (old, new) in links:
            issues.append((f"{old}->{new}", f"{where}: duplicate of an earlier row; the first one is kept"))
            continue
        links[(old, new)] = {
            "from_geography": OLD,
            "from_code": old,
            "to_geography": NEW,
            "to_code": new,
            "kind": link_kind(row["change_note"]),
            "n_targets": int(row["n_new_targets"] or 1),
            "population_share": None,
            "note_vi": row["change_note"].strip(),
            "reconciled": not problems,
        }
    _assign_population_shares(list(links.values()))
    linked = {old for old, _ in links}
    for code in sorted(old_codes - linked):
        issues.append(
            (code, f"commune {code} of {OLD} has no row in the conversion table; it has no successor")
        )
    return list(links.values()), issues


def _assign_population_shares(links: list[dict[str, Any]]) -> None:
    """Shares the source states: one target takes all; 'whole population' to one of several targets."""
    by_origin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for link in links:
        by_origin[link["from_code"]].append(link)
    for targets in by_origin.values():
        if len(targets) == 1:
            targets[0]["population_share"] = 1.0
            continue
        whole = [t for t in targets if t["kind"] == "partial_area_whole_population"]
        if len(whole) == 1:
            for target in targets:
                target["population_share"] = 1.0 if target is whole[0] else 0.0


def read_indicators() -> list[dict[str, Any]]:
    official = {row["id"]: row for row in _read_csv(INDICATOR_DIR / "population_indicators_catalogue.csv")}
    rows = []
    for row in _read_csv(INDICATOR_DIR / "portal_indicators.csv"):
        entry = official[row["official_code"]]
        rows.append(
            {
                "code": row["code"],
                "official_code": row["official_code"],
                "name_vi": row["name_vi"],
                "name_en": row["name_en"],
                "official_name_vi": entry["name_vi"],
                "official_name_en": entry["name_en"],
                "definition": entry["definition_formula"],
                "formula": row["formula"],
                "unit_vi": row["unit_vi"],
                "unit_en": row["unit_en"],
                "decimals": int(row["decimals"]),
                "topic": row["topic"],
                "dimensions": row["dimensions"].replace(";", ","),
                "periodicity": row["periodicity"].replace(";", ","),
                "official_disaggregations": entry["main_disaggregations"],
                "official_periodicity": entry["periodicity"],
                "legal_basis": entry["legal_basis"],
                "source": entry["SOURCE"],
                "supported": row["supported"] == "true",
            }
        )
    return rows


async def load_reference_data(session: AsyncSession) -> LoadReport:
    """Load geography versions, areas, the crosswalk and the indicator catalogue; idempotent."""
    report = LoadReport()
    report.tables["geography"] = await sync_rows(session, Geography, GEOGRAPHIES)
    codes: dict[str, set[str]] = {}
    for geography in (OLD, NEW):
        units = read_units(geography)
        codes[geography] = {u["code"] for u in units if u["level"] == "commune"}
        report.tables[f"area:{geography}"] = await sync_rows(session, Area, units, {"geography": geography})
    links, issues = read_crosswalk(codes[OLD], codes[NEW])
    report.tables["area_link"] = await sync_rows(session, AreaLink, links, {"from_geography": OLD})
    await replace_issues(session, "crosswalk:vn-2025-01->vn-2025-07", issues)
    report.unreconciled["crosswalk"] = [detail for _, detail in issues]
    report.tables["indicator"] = await sync_rows(session, Indicator, read_indicators())
    return report

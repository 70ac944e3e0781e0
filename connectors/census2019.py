"""The `census2019` connector: GSO's 2019 census population totals (real data) as a reference release.

Source: GSO 2019 Population and Housing Census, reference date 01/04/2019 (see the SOURCE column of
`data/census2019/census2019_population_by_commune_all.csv`). 2019 units were matched by name to the
GSO code list of 04/01/2025; units merged since then match no code and are reported, not dropped:
their population stays in the province and district totals.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

CENSUS_FILE: Final = (
    Path(__file__).parent / "data" / "census2019" / "census2019_population_by_commune_all.csv"
)
REFERENCE_DATE: Final = date(2019, 4, 1)
GEOGRAPHY: Final = "vn-2025-01"


@dataclass
class CensusTotals:
    """Urban and rural population by unit (GSO code of vn-2025-01), and the units left unmatched."""

    population: dict[str, tuple[int, int]] = field(default_factory=dict)  # code -> (urban, rural)
    levels: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    source: str = ""


def read_census(path: Path = CENSUS_FILE) -> CensusTotals:
    totals = CensusTotals()
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            level = row["level"]
            totals.source = totals.source or row["SOURCE"]
            code = {
                "province": row["province_code_2019"],
                "district": row["district_code_gso_2025_01"],
                "commune": row["commune_code_gso_2025_01"],
            }.get(level)
            if code is None:  # the national total
                continue
            if not code:
                name = row["commune"] or row["district"]
                totals.unmatched.append(
                    f"line {line}: {level} {name} ({row['province']}), {int(row['total']):,} persons: "
                    "no GSO 2025-01 code (merged since 2019); counted in its province and district"
                )
                continue
            total, urban = int(row["total"]), int(row["urban"] or 0)
            rural = total - urban
            old = totals.population.get(code, (0, 0))
            totals.population[code] = (old[0] + urban, old[1] + rural)
            totals.levels[code] = level
    return totals

"""Publishing the 2019 census totals as a reference release (kind `census`)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cube import CENSUS_POPULATION, encode_row, month_index
from app.db import transaction
from app.models import CubeCell, Release
from app.repositories.releases import ReleaseRepository
from connectors.census2019 import CENSUS_FILE, GEOGRAPHY, REFERENCE_DATE, read_census

# The census counts residents at 00:00 on 1 April 2019: the stock at the end of March.
CENSUS_MONTH = month_index(REFERENCE_DATE) - 1


async def publish_census(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    totals = read_census()
    input_hash = hashlib.sha256(CENSUS_FILE.read_bytes()).hexdigest()
    async with sessions() as session:
        repository = ReleaseRepository(session)
        existing = await repository.release_with_hash("census", input_hash)
        known = {a.code for a in await repository.areas(GEOGRAPHY)}
    unmatched = list(totals.unmatched)
    unknown = sorted(c for c in totals.population if c not in known)
    unmatched += [f"code {c}: not a unit of {GEOGRAPHY}" for c in unknown]
    report: dict[str, Any] = {"unmatched_units": len(unmatched), "unmatched": unmatched}
    if existing is not None:
        return {"status": "unchanged", "release_id": existing.id, **report}

    created = datetime.now(UTC)
    release_id = f"census-2019-{input_hash[:8]}"
    codes = sorted(c for c in totals.population if c in known)
    rows = (
        (
            CubeCell,
            {
                "release_id": release_id,
                "geography": GEOGRAPHY,
                "area_code": code,
                "month": CENSUS_MONTH,
                "counts": encode_row(np.array(totals.population[code], dtype=np.int64)),
            },
        )
        for code in codes
    )
    release = Release(
        id=release_id,
        kind="census",
        created_at=created,
        synthetic=False,
        first_month=CENSUS_MONTH,
        last_month=CENSUS_MONTH,
        geographies=GEOGRAPHY,
        sources=json.dumps(
            [{"connector": "census2019", "source": totals.source, "input_hash": input_hash}],
            ensure_ascii=False,
        ),
        row_counts=json.dumps({"units": len(codes), "unmatched": len(unmatched)}),
        input_hash=input_hash,
        note=json.dumps(
            {
                "areas": {GEOGRAPHY: {c: totals.levels[c] for c in codes}},
                "partial": {},
                "reference_date": REFERENCE_DATE.isoformat(),
                "layout": [CENSUS_POPULATION.name],
                "unmatched": unmatched,
            },
            ensure_ascii=False,
        ),
    )
    async with transaction(sessions) as session:
        written = await ReleaseRepository(session).add_release(release, rows)
    return {"status": "published", "release_id": release_id, "cube_rows": written, **report}

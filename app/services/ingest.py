"""Ingest: connector -> validation -> staging -> release builder -> atomic publish.

A load is recorded before anything else, so a failed load leaves its trace (status, message and
rejected rows) while the served release stays as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from app.cube import encode_row, month_label
from app.db import transaction
from app.models import CubeCell, PublishedCell, Release
from app.privacy.cellkey import METHOD, AtomPublisher, ptable_for
from app.privacy.lattice import ATOM_SETS
from app.releases.builder import LAYOUT, MonthBuild, ReleaseBuilder
from app.releases.mappings import plan_geography
from app.releases.validation import (
    RegisterFormatError,
    Reject,
    ValidationResult,
    validate_register,
)
from app.repositories.releases import ReleaseRepository
from connectors.base import RegisterConnector

REJECTS_SHOWN = 20


@dataclass
class IngestReport:
    load_id: int
    connector: str
    source: str
    status: str  # published | unchanged | failed
    message: str
    release_id: str | None = None
    rows_read: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    first_rejects: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def register_hash(result: ValidationResult) -> str:
    """A fingerprint of the accepted records, independent of row order."""
    digest = hashlib.sha256()
    frames = (result.register.households, result.register.persons, result.register.events)
    for frame in frames:
        digest.update(np.sort(frame.hash_rows(seed=0).to_numpy()).tobytes())
    digest.update(f"{result.register.snapshot_month}:{result.register.last_month}".encode())
    return digest.hexdigest()


def _summarise(rejects: list[Reject]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    reasons = Counter(r.reason for r in rejects)
    first = [vars(r) for r in rejects[:REJECTS_SHOWN]]
    return dict(reasons.most_common()), first


def cube_rows(release_id: str, build: MonthBuild) -> Iterator[dict[str, Any]]:
    """One row per area and month holding every measure (rows of all zeros are left out: absent reads as zero)."""
    for cube in build.areas:
        for area in np.flatnonzero(cube.counts.any(axis=1)):
            yield {
                "release_id": release_id,
                "geography": cube.mapping.geography,
                "area_code": cube.mapping.codes[area],
                "month": cube.month,
                "counts": encode_row(cube.counts[area]),
            }


def release_rows(
    release_id: str, months: Iterable[MonthBuild], publisher: AtomPublisher
) -> Iterator[tuple[type[SQLModel], dict[str, Any]]]:
    """The internal cube and the published atoms, month by month as the builder counts them."""
    for build in months:
        for row in cube_rows(release_id, build):
            yield CubeCell, row
        for row in publisher.add(build):
            yield PublishedCell, row


class IngestService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], privacy_secret: str) -> None:
        self.sessions = sessions
        self.secret = privacy_secret.encode()

    async def ingest(self, connector: RegisterConnector, allow_rejects: bool = False) -> IngestReport:
        async with transaction(self.sessions) as session:
            load = await ReleaseRepository(session).start_load(connector.name, connector.describe())
        assert load.id is not None
        report = IngestReport(load.id, connector.name, connector.describe(), "failed", "")
        try:
            await self._run(connector, report, allow_rejects)
        except RegisterFormatError as exc:
            report.status, report.message = "failed", exc.detail
        async with transaction(self.sessions) as session:
            await ReleaseRepository(session).finish_load(
                load.id,
                status=report.status,
                message=report.message,
                release_id=report.release_id,
                rows_read=sum(report.rows_read.values()),
                rows_rejected=report.rejected,
            )
        return report

    async def _run(self, connector: RegisterConnector, report: IngestReport, allow_rejects: bool) -> None:
        clock = time.perf_counter()
        source = await connector.read()
        report.seconds["read"] = round(time.perf_counter() - clock, 2)
        async with self.sessions() as session:
            repository = ReleaseRepository(session)
            areas = await repository.areas(source.geography)
            if not areas:
                raise RegisterFormatError(
                    f"geography '{source.geography}' is not loaded; run `portal geography load`"
                )
            links = await repository.links_from(source.geography)
            other_areas = {g: await repository.areas(g) for g in links}
        communes = {a.code for a in areas if a.level == "commune"}

        clock = time.perf_counter()
        result = await asyncio.to_thread(validate_register, source, communes)
        geography, synthetic = source.geography, source.synthetic
        del source  # the validated frames replace the source's: keep one copy in memory
        report.seconds["validate"] = round(time.perf_counter() - clock, 2)
        report.rows_read = result.rows_read
        report.rejected = len(result.rejects)
        report.reject_reasons, report.first_rejects = _summarise(result.rejects)
        if result.rejects:
            async with transaction(self.sessions) as session:
                await ReleaseRepository(session).add_rejects(
                    [{"load_id": report.load_id, **vars(r)} for r in result.rejects]
                )
            if not allow_rejects:
                report.message = (
                    f"{len(result.rejects)} rows rejected; nothing published (fix them, or publish the valid rows "
                    "with --allow-rejects)"
                )
                return
        input_hash = register_hash(result)
        async with self.sessions() as session:
            existing = await ReleaseRepository(session).release_with_hash("register", input_hash)
        if existing is not None:
            report.status, report.release_id = "unchanged", existing.id
            report.message = f"the same records are already published as {existing.id}; nothing new"
            return

        clock = time.perf_counter()
        register_communes = set(result.register.persons["area_code"].unique().to_list())
        plan = plan_geography(geography, register_communes, areas, other_areas, links)
        builder = await asyncio.to_thread(ReleaseBuilder, result.register, plan.communes, self.secret)
        report.seconds["build"] = round(time.perf_counter() - clock, 2)

        clock = time.perf_counter()
        created = datetime.now(UTC)
        release_id = f"register-{created:%Y%m%dT%H%M%S}-{input_hash[:8]}"
        accepted = {
            "households": result.register.households.height,
            "persons": result.register.persons.height,
            "events": result.register.events.height,
        }
        builder_months = builder.build(plan.mappings)
        publisher = AtomPublisher(
            release_id,
            list(ATOM_SETS.values()),
            plan.mappings,
            builder.piece_targets(),
            geography,
            result.register.snapshot_month,
            self.secret,
        )
        release = Release(
            id=release_id,
            kind="register",
            created_at=created,
            synthetic=synthetic,
            first_month=result.register.snapshot_month,
            last_month=result.register.last_month,
            geographies=",".join(sorted(plan.levels)),
            sources=json.dumps(
                [{"connector": connector.name, "source": connector.describe(), "input_hash": input_hash}],
                ensure_ascii=False,
            ),
            row_counts=json.dumps(
                {"read": result.rows_read, "accepted": accepted, "rejected": len(result.rejects)},
                ensure_ascii=False,
            ),
            input_hash=input_hash,
            note=json.dumps(
                {
                    "areas": plan.levels,
                    "partial": plan.partial,
                    "period": [
                        month_label(result.register.snapshot_month),
                        month_label(result.register.last_month),
                    ],
                    "layout": [m.name for m in LAYOUT],
                    "disclosure": {
                        "method": METHOD,
                        "atom_sets": {a.name: ptable_for(a).version for a in ATOM_SETS.values()},
                        "answerable": publisher.answerable(),
                    },
                },
                ensure_ascii=False,
            ),
        )
        async with transaction(self.sessions) as session:
            # Counting runs month by month as rows are written, so the cube is never whole in memory.
            written = await ReleaseRepository(session).add_release(
                release, release_rows(release_id, builder_months, publisher)
            )
        report.seconds["count_and_publish"] = round(time.perf_counter() - clock, 2)
        report.status, report.release_id = "published", release_id
        report.message = f"published {release_id}: {written} cube rows"

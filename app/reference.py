"""Reference data held in process: geography, the indicator catalogue and release descriptions.

Every data request needs them (is the indicator known, which release is newest, what an area is
called, which communes lie below a province), and they change only when an operator loads reference
data or publishes a release. Read per request they were four of a data request's five statements;
here they are read once per change of the store and shared, read-only, by every request.

Whether the store changed is asked at most once per `cache_epoch_seconds`, by a few cheap counts
(the publication epoch, which also keys every cached answer), and by one request at a time: the
others wait for that answer. Each starting its own read (as many as there are concurrent requests,
each taking a pooled connection) stalled every request once a period: p99 of a cached GET at 16
connections went from ~7 ms to ~85 ms. A release id the snapshot does not know is looked up in the
store, so a release published a moment ago is found by its id without waiting for the period.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.db import read_retrying
from app.errors import UnknownIndicator
from app.models import Area, Geography, Indicator, Release


@dataclass(frozen=True)
class Snapshot:
    """The reference data of one epoch. Never changed: a change of the store makes a new snapshot."""

    epoch: str
    indicators: Mapping[str, Indicator]
    geographies: Sequence[Geography]  # by valid_from
    releases: Sequence[Release]  # newest first
    areas: Mapping[str, Mapping[str, Area]]  # geography -> code -> area
    children: Mapping[tuple[str, str], Sequence[Area]]  # (geography, parent code) -> areas by code
    _geographies: Mapping[str, Geography] = field(repr=False, default_factory=dict)
    _releases: Mapping[str, Release] = field(repr=False, default_factory=dict)
    _latest: Mapping[str, Release] = field(repr=False, default_factory=dict)  # kind -> newest

    @classmethod
    def of(
        cls,
        epoch: str,
        indicators: Sequence[Indicator],
        geographies: Sequence[Geography],
        releases: Sequence[Release],
        areas: Sequence[Area],
    ) -> Snapshot:
        by_code: dict[str, dict[str, Area]] = defaultdict(dict)
        children: dict[tuple[str, str], list[Area]] = defaultdict(list)
        for area in sorted(areas, key=lambda a: (a.geography, a.code)):
            by_code[area.geography][area.code] = area
            if area.parent_code is not None:
                children[(area.geography, area.parent_code)].append(area)
        return cls(
            epoch=epoch,
            indicators={i.code: i for i in indicators},
            geographies=list(geographies),
            releases=list(releases),
            areas=dict(by_code),
            children={key: tuple(found) for key, found in children.items()},
            _geographies={g.id: g for g in geographies},
            _releases={r.id: r for r in releases},
            _latest={r.kind: r for r in reversed(releases)},  # oldest first: the newest kept
        )

    def get_indicator(self, code: str) -> Indicator | None:
        return self.indicators.get(code.upper())

    def require_indicator(self, code: str) -> Indicator:
        found = self.get_indicator(code)
        if found is None:
            raise UnknownIndicator(f"no indicator with code '{code}'; list them at /v1/indicators")
        return found

    def get_geography(self, geography_id: str) -> Geography | None:
        return self._geographies.get(geography_id)

    def get_release(self, release_id: str) -> Release | None:
        return self._releases.get(release_id)

    def latest_release(self, kind: str) -> Release | None:
        return self._latest.get(kind)

    def get_area(self, geography: str, code: str) -> Area | None:
        return self.areas.get(geography, {}).get(code)

    def get_areas(self, geography: str, codes: Sequence[str]) -> dict[str, Area]:
        known = self.areas.get(geography, {})
        return {code: known[code] for code in codes if code in known}

    def children_of(self, geography: str, codes: Sequence[str]) -> dict[str, list[Area]]:
        return {code: list(self.children.get((geography, code), ())) for code in codes}

    def descendant_codes(self, geography: str, code: str, level: str) -> list[str]:
        """Codes of the units at `level` below `code` (one or two levels down), sorted."""
        found: list[str] = []
        for child in self.children.get((geography, code), ()):
            if child.level == level:
                found.append(child.code)
            else:
                found += [a.code for a in self.children.get((geography, child.code), ()) if a.level == level]
        return sorted(found)


class ReferenceStore:
    """The current Snapshot, read again when the store's epoch changes.

    An app's store lives as long as the app, so that the gateway holds it from the start; its
    sessions are the running app's (`bind`, at each start of the app's lifespan)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        self.bind(sessions)

    def bind(self, sessions: async_sessionmaker[AsyncSession] | None) -> None:
        """Read from these sessions from now on, starting with nothing held."""
        self.sessions = sessions
        self._snapshot: Snapshot | None = None
        self._checked = float("-inf")
        self._reading: asyncio.Future[Snapshot] | None = None

    def fresh(self) -> Snapshot | None:
        """The snapshot when the store was checked within the period (no await needed), else None."""
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - self._checked < self.refresh_seconds:
            return snapshot
        return None

    async def current(self) -> Snapshot:
        snapshot = self.fresh()
        if snapshot is not None:
            return snapshot
        if self._reading is None:
            reading = asyncio.ensure_future(self._refresh())
            reading.add_done_callback(self._read_done)
            self._reading = reading
        # Shielded: a caller that goes away does not cancel the read the others wait for.
        return await asyncio.shield(self._reading)

    async def _refresh(self) -> Snapshot:
        if self.sessions is None:
            raise RuntimeError("the reference store is not bound to a database: the app has not started")
        started = time.monotonic()
        snapshot = await read_retrying(self.sessions, self._read)
        self._checked = started
        return snapshot

    async def _read(self, session: AsyncSession) -> Snapshot:
        epoch = await _epoch(session)
        if self._snapshot is None or self._snapshot.epoch != epoch:
            self._snapshot = await _load(session, epoch)
            session.expunge_all()  # detached: they outlive this session, and nobody changes them
            # The snapshot (and what the app set up before it) lives until the next publication:
            # kept out of the collector's full passes, which went over its ~15,000 areas every
            # time and made p99 of uncached GETs ~190 ms instead of ~40 ms at 16 connections.
            # What was frozen before (the last snapshot) is given back to the collector first.
            gc.unfreeze()
            gc.collect()
            gc.freeze()
        return self._snapshot

    def _read_done(self, reading: asyncio.Future[Snapshot]) -> None:
        self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved here too: every waiter may have gone


async def _epoch(session: AsyncSession) -> str:
    """Changes whenever a release is published or reference data is loaded (which adds areas or
    indicators; the reference files ship with the portal, so their content changes with its version)."""
    releases, newest = (await session.execute(select(func.count(), func.max(Release.created_at)))).one()
    areas = await session.scalar(select(func.count()).select_from(Area))
    indicators = await session.scalar(select(func.count()).select_from(Indicator))
    return f"{releases}:{newest}:{areas}:{indicators}"


async def read_snapshot(session: AsyncSession) -> Snapshot:
    """The reference data as the session sees it now (for commands and tests; a server uses the store)."""
    return await _load(session, await _epoch(session))


async def _load(session: AsyncSession, epoch: str) -> Snapshot:
    indicators = (await session.scalars(select(Indicator))).all()
    geographies = (await session.scalars(select(Geography).order_by(col(Geography.valid_from)))).all()
    releases = (await session.scalars(select(Release).order_by(col(Release.created_at).desc()))).all()
    areas = (await session.scalars(select(Area))).all()
    return Snapshot.of(epoch, indicators, geographies, releases, areas)

"""Usage figures: requests per client (or `anonymous`) per day per endpoint class, counted in memory and
flushed to the database in batches by a background task, off the request path.

Counting is one dictionary increment: the gateway (app/gateway.py) knows each path's endpoint class
(memoised per path) and the day is read from the clock at most once a second. `/oauth/*` requests
count as `anonymous`: clients authenticate there inside the endpoint, after the gateway has counted
the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.repository import AccessRepository

log = logging.getLogger("portal.access.usage")

ANONYMOUS_CLIENT = "anonymous"
DATA_CLASSES = frozenset({"data", "reference", "graphql"})  # what counts as using the data (KPIs)
_REFERENCE_PREFIXES = ("/v1/geographies", "/v1/areas", "/v1/indicators", "/v1/releases")


def endpoint_class(path: str) -> str:
    if path.startswith(("/oauth/", "/.well-known/")):
        return "oauth"
    if path.startswith("/v1/admin"):
        return "admin"
    if path.startswith("/graphql"):
        return "graphql"
    if path.startswith(_REFERENCE_PREFIXES):
        return "reference"
    if path in ("/v1/openapi.json", "/v1/limits") or path.startswith("/docs"):
        return "meta"
    if path.startswith("/v1/"):
        return "data"
    return "other"


class UsageRecorder:
    def __init__(self) -> None:
        self._counts: Counter[tuple[date, str, str]] = Counter()
        self._keys_used: dict[int, datetime] = {}
        # The clock as of the current second: the figures are per day, last use of a key per second.
        self._next_second = 0.0
        self._now = datetime.now(UTC)
        self._today = self._now.date()

    def record(self, client_id: str | None, kind: str, api_key_id: int | None = None) -> None:
        """Count one request of endpoint class `kind` (see `endpoint_class`)."""
        now = time.time()
        if now >= self._next_second:
            second = int(now)
            self._next_second = second + 1.0
            self._now = datetime.fromtimestamp(second, UTC)
            self._today = self._now.date()
        self._counts[(self._today, client_id or ANONYMOUS_CLIENT, kind)] += 1
        if api_key_id is not None:
            self._keys_used[api_key_id] = self._now

    @property
    def pending(self) -> int:
        return sum(self._counts.values())

    async def flush(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        counts, keys = self._counts, self._keys_used
        if not counts and not keys:
            return
        self._counts, self._keys_used = Counter(), {}
        try:
            async with sessions() as session, session.begin():
                repository = AccessRepository(session)
                await repository.add_usage(counts)
                await repository.touch_keys(keys)
        except Exception:
            # Keep the figures for the next flush rather than lose them.
            self._counts.update(counts)
            for key_id, at in keys.items():
                self._keys_used[key_id] = max(at, self._keys_used.get(key_id, at))
            raise

    async def run(self, sessions: async_sessionmaker[AsyncSession], interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush(sessions)
            except Exception as exc:
                log.warning("usage flush failed (%s); retrying at the next interval", type(exc).__name__)

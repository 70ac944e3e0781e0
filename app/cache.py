"""The response cache: the store of whole answers and their keys; the gateway (app/gateway.py) answers
repeated GETs from it before FastAPI routing runs.

The gateway has already resolved the caller's tier and applied the rate limit when it looks here, so
a cached answer is no way around either. The key is (publication epoch, path, normalised query,
tier, Accept, Accept-Language): publishing a release changes the epoch (app/reference.py), so stale
answers are never served and nothing needs invalidating. An answer marked `Cache-Control: no-store`
(a GraphQL answer with errors) is served, not kept. The ETag is that key's digest; `If-None-Match`
gets a 304 at once. Level one is in-process (LRU by bytes); Redis is the shared second level when
configured, and its failures only cost the cache, never the request. Entries hold no per-request headers (rate
limits, tier, CORS, deprecation): the gateway adds those to every answer.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Final, NamedTuple

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.http import query_pairs
from auth.principal import Tier

log = logging.getLogger("portal.cache")

CACHED_PREFIXES: Final = ("/v1/", "/graphql")  # GraphQL: GET queries, persisted ones included
NOT_CACHED: Final = ("/v1/admin", "/v1/limits", "/v1/bulk/")  # per caller, or streamed
MAX_BODY: Final = 2 * 1024 * 1024  # larger answers are served, not kept
# What a kept answer varies by: its key's headers, the credentials (the tier), and Origin (the CORS
# headers the gateway adds depend on it).
VARY: Final = b"Accept, Accept-Language, Authorization, X-API-Key, Origin"


class CachedResponse(NamedTuple):
    """A kept answer."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes

    def dumps(self) -> bytes:
        return (
            orjson.dumps(
                {"s": self.status, "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]}
            )
            + b"\n"
            + self.body
        )

    @classmethod
    def loads(cls, raw: bytes) -> CachedResponse:
        head, _, body = raw.partition(b"\n")
        meta = orjson.loads(head)
        return cls(meta["s"], tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in meta["h"]), body)


class ResponseStore:
    """Level one in process, level two in Redis (optional); both keyed by the request digest."""

    def __init__(
        self,
        max_bytes: int,
        redis_url: str | None,
        ttl_seconds: int,
        prefix: str = "portal:cache:",
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl_seconds
        self.prefix = prefix
        # Held as plain tuples, which the garbage collector stops tracking (app/query/rows.py says why).
        self._local: OrderedDict[str, tuple[int, tuple[tuple[bytes, bytes], ...], bytes]] = OrderedDict()
        self._bytes = 0
        self._redis: Redis | None = Redis.from_url(redis_url) if redis_url else None
        self.hits = self.misses = 0

    @property
    def shared(self) -> bool:
        """Whether Redis is the second level."""
        return self._redis is not None

    async def get(self, key: str) -> CachedResponse | None:
        found = self.local(key)
        if found is None and self._redis is not None:
            found = await self.fetch(key)
        return found

    def local(self, key: str) -> CachedResponse | None:
        """Level one only: no await, for the gateway's hot path."""
        held = self._local.get(key)
        if held is None:
            return None
        self._local.move_to_end(key)
        return CachedResponse(*held)

    async def fetch(self, key: str) -> CachedResponse | None:
        """Level two (Redis), kept in level one when found."""
        if self._redis is None:
            return None
        try:
            raw = await self._redis.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            log.warning("response cache: Redis unavailable (%s); serving without level two", exc)
            return None
        if not isinstance(raw, bytes):
            return None
        found = CachedResponse.loads(raw)
        self._keep(key, found)
        return found

    async def put(self, key: str, response: CachedResponse) -> None:
        self._keep(key, response)
        if self._redis is not None:
            try:
                await self._redis.set(self.prefix + key, response.dumps(), ex=self.ttl)
            except (RedisError, OSError) as exc:
                log.warning("response cache: Redis unavailable (%s); kept in process only", exc)

    def _keep(self, key: str, response: CachedResponse) -> None:
        size = len(response.body) + 256
        if size > self.max_bytes:
            return
        if key in self._local:
            self._bytes -= len(self._local.pop(key)[2]) + 256
        self._local[key] = (response.status, tuple(response.headers), response.body)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._local.popitem(last=False)
            self._bytes -= len(dropped[2]) + 256

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def _normalised_query(raw: bytes) -> str:
    """Parameters decoded and sorted, so that the same question spelled in another order, or
    escaped otherwise, shares one entry (as JSON: cheaper to write than a query string)."""
    return orjson.dumps(sorted(query_pairs(raw))).decode()


@lru_cache(maxsize=8192)
def response_key(
    epoch: str, path: str, query: bytes, tier: Tier, accept: bytes, accept_language: bytes
) -> str:
    """The key (and ETag) of a request's answer; memoised, since a cache hit is the same few requests
    asked again and parsing and re-encoding the query string was the largest cost of a hit. Header
    values are the raw bytes (empty when absent) of the first `Accept` and `Accept-Language`."""
    parts = (
        epoch,
        path,
        _normalised_query(query),
        tier.value,
        accept.decode("latin-1"),
        accept_language.decode("latin-1"),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


# Answers for credentials must not sit in shared caches; open data may.
CACHE_CONTROL: Final = {
    tier: (b"cache-control", b"public, max-age=60" if tier is Tier.PUBLIC else b"private, max-age=60")
    for tier in Tier
}


def etag_matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags

"""Rate limits per tier and client: fixed windows counted in Redis when configured, in-process otherwise.

The counting is the `limits` library's (the engine under slowapi). slowapi itself attaches limits to
routes and ships a `BaseHTTPMiddleware`; the portal needs one pure ASGI check in front of everything,
including responses served from the cache before routing, so auth.middleware calls these storages
directly. When Redis fails, requests are counted on local counters (a warning is logged) and Redis is
tried again after `redis_retry_seconds`: a Redis outage never takes the API down, it only makes the
limits per process for a while.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage

from app.settings import Settings
from auth.principal import Principal, Tier

log = logging.getLogger("portal.access.limits")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window resets
    window: int  # seconds
    storage: str  # redis | local

    def headers(self) -> list[tuple[bytes, bytes]]:
        # IETF draft-ietf-httpapi-ratelimit-headers: Limit/Remaining/Reset (delta seconds) and Policy.
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_after).encode()),
            (b"ratelimit-policy", f"{self.limit};w={self.window}".encode()),
        ]


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tiers: dict[Tier, RateLimitItem] = {
            Tier.PUBLIC: parse(settings.rate_limit_public),
            Tier.DEPARTMENT: parse(settings.rate_limit_department),
            Tier.INTERNAL: parse(settings.rate_limit_internal),
        }
        self.oauth = parse(settings.rate_limit_oauth)
        self.local: Storage = MemoryStorage()
        self.redis: Storage | None = None
        if settings.redis_url:
            scheme, _, rest = settings.redis_url.partition("://")
            self.redis = RedisStorage(
                f"async+{scheme}://{rest}",
                implementation="redispy",
                key_prefix=f"{settings.redis_key_prefix}:ratelimit",
                wrap_exceptions=True,
                socket_timeout=0.5,  # a hung Redis must not stall requests
                socket_connect_timeout=0.5,
            )
        self._redis_down_until = 0.0

    @property
    def redis_healthy(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._redis_down_until

    def bucket(self, principal: Principal, client_ip: str, oauth: bool) -> tuple[RateLimitItem, str]:
        """The limit that applies and the key it is counted under."""
        if oauth:
            return self.oauth, f"oauth/ip/{client_ip}"
        if principal.client_id is None:
            return self.tiers[Tier.PUBLIC], f"ip/{client_ip}"
        return self.tiers[principal.tier], f"client/{principal.client_id}"

    async def hit(self, item: RateLimitItem, key: str) -> Decision:
        if self.redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                decision = await self._hit(self.redis, item, key, "redis")
            except Exception as exc:  # any failure of the shared store: fall back, never fail the request
                self._redis_down_until = time.monotonic() + self.settings.redis_retry_seconds
                log.warning(
                    "rate-limit storage Redis unreachable (%s); counting in-process, retrying in %.0f s",
                    type(exc).__name__,
                    self.settings.redis_retry_seconds,
                )
            else:
                if self._redis_down_until:
                    log.warning("rate-limit storage Redis is back; shared counters resumed")
                    self._redis_down_until = 0.0
                return decision
        return await self._hit(self.local, item, key, "local")

    async def _hit(self, storage: Storage, item: RateLimitItem, key: str, name: str) -> Decision:
        window = item.get_expiry()
        counted_as = item.key_for(key)
        count = await storage.incr(counted_as, window)
        reset_at = await storage.get_expiry(counted_as)
        return Decision(
            allowed=count <= item.amount,
            limit=item.amount,
            remaining=max(0, item.amount - count),
            reset_after=max(0, math.ceil(reset_at - time.time())),
            window=window,
            storage=name,
        )

    def policy(self) -> dict[str, dict[str, object]]:
        def describe(item: RateLimitItem, per: str) -> dict[str, object]:
            return {"limit": item.amount, "window_seconds": item.get_expiry(), "per": per, "text": str(item)}

        tiers: dict[str, dict[str, object]] = {
            tier.value: describe(item, "client IP" if tier is Tier.PUBLIC else "client")
            for tier, item in self.tiers.items()
        }
        tiers["oauth"] = describe(self.oauth, "client IP")
        return tiers

    async def close(self) -> None:
        if self.redis is not None:
            bridge = getattr(self.redis, "bridge", None)
            client = getattr(bridge, "storage", None)
            if client is not None and hasattr(client, "aclose"):
                await client.aclose()

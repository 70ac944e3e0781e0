"""Rate limits per tier and client: fixed windows counted in Redis when configured, in-process otherwise.

The shared counting is the `limits` library's RedisStorage (the engine under slowapi), so every
process behind the load balancer spends one budget. In process the windows are counted here, by
`FixedWindows`: a dictionary lookup and an increment, since the gateway (app/gateway.py) checks the
limit on every request, cached answers included, and the library's MemoryStorage costs several
times that. When Redis fails, requests are counted on the local windows (a warning is logged) and
Redis is tried again after `redis_retry_seconds`: a Redis outage never takes the API down, it only
makes the limits per process for a while.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import Final

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage

from app.settings import Settings
from auth.principal import Principal, Tier

log = logging.getLogger("portal.access.limits")

Header = tuple[bytes, bytes]

MAX_LOCAL_WINDOWS: Final = 100_000  # per rule; beyond it the oldest windows are dropped early


class _Window:
    __slots__ = ("count", "ends")

    def __init__(self, ends: float) -> None:
        self.ends = ends
        self.count = 1


class FixedWindows:
    """In-process fixed windows of one length, each opening at its key's first hit.

    Windows are kept in the order they opened, which (one length for all) is the order they end, so
    the ended ones are dropped from the front as new ones open: memory follows the callers of one
    window. A flood of distinct keys beyond `max_keys` ends the oldest windows early rather than
    growing without bound."""

    def __init__(self, seconds: int, max_keys: int = MAX_LOCAL_WINDOWS) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def hit(self, key: str, now: float) -> tuple[int, float]:
        """Count one request; the window's count so far and when it ends (monotonic seconds)."""
        window = self._windows.get(key)
        if window is not None and window.ends > now:
            window.count += 1
            return window.count, window.ends
        windows = self._windows
        windows.pop(key, None)  # an ended window: its successor goes to the back, in opening order
        while windows:
            oldest = next(iter(windows.values()))
            if oldest.ends > now and len(windows) < self.max_keys:
                break
            windows.popitem(last=False)
        window = windows[key] = _Window(now + self.seconds)
        return 1, window.ends

    def __len__(self) -> int:
        return len(self._windows)


class Rule:
    """One limit: the `limits` item (its text and Redis key), its local windows, and the values of
    its `RateLimit-Limit` and `RateLimit-Policy` headers, encoded once."""

    def __init__(self, text: str) -> None:
        self.item: RateLimitItem = parse(text)
        self.limit = self.item.amount
        self.window = self.item.get_expiry()
        self.local = FixedWindows(self.window)
        # IETF draft-ietf-httpapi-ratelimit-headers: Limit/Remaining/Reset (delta seconds) and Policy.
        self.limit_header: Header = (b"ratelimit-limit", b"%d" % self.limit)
        self.policy_header: Header = (b"ratelimit-policy", b"%d;w=%d" % (self.limit, self.window))


class Decision:
    """One request counted against a rule: `count` requests in the window, this one included."""

    __slots__ = ("allowed", "count", "reset_after", "rule", "storage")

    def __init__(self, rule: Rule, count: int, reset_after: int, storage: str) -> None:
        self.rule = rule
        self.count = count
        self.reset_after = reset_after  # seconds until the window resets
        self.storage = storage  # redis | local
        self.allowed = count <= rule.limit

    @property
    def limit(self) -> int:
        return self.rule.limit

    @property
    def remaining(self) -> int:
        return max(0, self.rule.limit - self.count)

    @property
    def window(self) -> int:
        return self.rule.window

    def headers(self) -> list[Header]:
        rule = self.rule
        return [
            rule.limit_header,
            (b"ratelimit-remaining", b"%d" % max(0, rule.limit - self.count)),
            (b"ratelimit-reset", b"%d" % self.reset_after),
            rule.policy_header,
        ]


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tiers: dict[Tier, Rule] = {
            Tier.PUBLIC: Rule(settings.rate_limit_public),
            Tier.DEPARTMENT: Rule(settings.rate_limit_department),
            Tier.INTERNAL: Rule(settings.rate_limit_internal),
        }
        self.oauth = Rule(settings.rate_limit_oauth)
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

    def bucket(self, principal: Principal, client_ip: str, oauth: bool) -> tuple[Rule, str]:
        """The limit that applies and the key it is counted under."""
        if oauth:
            return self.oauth, f"oauth/ip/{client_ip}"
        if principal.client_id is None:
            return self.tiers[Tier.PUBLIC], f"ip/{client_ip}"
        return self.tiers[principal.tier], f"client/{principal.client_id}"

    async def hit(self, rule: Rule, key: str) -> Decision:
        """Count on Redis when configured and reachable, else in process (see `hit_local`)."""
        if self.redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                decision = await self._hit_redis(self.redis, rule, key)
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
        return self.hit_local(rule, key)

    def hit_local(self, rule: Rule, key: str) -> Decision:
        """Count in this process; synchronous, so that the gateway awaits nothing without Redis."""
        now = time.monotonic()
        count, ends = rule.local.hit(key, now)
        return Decision(rule, count, math.ceil(ends - now), "local")  # the window is open: ends > now

    async def _hit_redis(self, storage: Storage, rule: Rule, key: str) -> Decision:
        counted_as = rule.item.key_for(key)
        count = await storage.incr(counted_as, rule.window)
        reset_at = await storage.get_expiry(counted_as)
        return Decision(rule, count, max(0, math.ceil(reset_at - time.time())), "redis")

    def policy(self) -> dict[str, dict[str, object]]:
        def describe(rule: Rule, per: str) -> dict[str, object]:
            return {"limit": rule.limit, "window_seconds": rule.window, "per": per, "text": str(rule.item)}

        tiers: dict[str, dict[str, object]] = {
            tier.value: describe(rule, "client IP" if tier is Tier.PUBLIC else "client")
            for tier, rule in self.tiers.items()
        }
        tiers["oauth"] = describe(self.oauth, "client IP")
        return tiers

    async def close(self) -> None:
        if self.redis is not None:
            bridge = getattr(self.redis, "bridge", None)
            client = getattr(bridge, "storage", None)
            if client is not None and hasattr(client, "aclose"):
                await client.aclose()

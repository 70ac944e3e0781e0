"""The gateway: the one pure ASGI layer every request meets first, in front of FastAPI's whole stack.

In order, for each HTTP request:
1. CORS: a preflight goes to Starlette's CORSMiddleware and is not counted. Every other response
   gets its Access-Control-* headers for the request's Origin here, from that same middleware's
   configuration, so refusals and cached answers carry the right ones too.
2. Access: the caller's bearer token or API key is resolved (auth/credentials.py) to the Principal
   in `scope["state"]["principal"]`, its tier's rate limit is applied (auth/limits.py) and the
   request is counted (auth/usage.py). Every response carries `RateLimit-*` and `X-Portal-Tier`; a
   credential that does not stand is a 401, a spent limit a 429. `/health` and `/ready` are exempt
   (load balancers probe them); `/oauth/*` and `/.well-known/*` carry their own per-IP limit and
   authenticate clients themselves, so their Authorization header is not read here.
3. Guards: a NUL in the path or query is a 400 (app/guards.py).
4. Internal-tier reads of data are written to the audit log before they are served, and are never
   answered from the cache.
5. Cacheable GETs and HEADs (of /v1 and of /graphql: GET queries, persisted ones included) are
   answered from the response store (app/cache.py), or run through the app and kept unless marked
   no-store; everything else runs through the app. "The app" is FastAPI's stack, except for GETs
   of /v1/data, which go to the express lane (app/express.py): the same endpoint and error
   handlers, without FastAPI's router.
Deprecation headers (app/deprecation.py) go on every response of an announced path.

One layer rather than a middleware each, because a cached answer is the common request and a layer
costs every request its own call, send wrapper and headers copy. What can be worked out once is:
per path (endpoint class, cacheability, deprecations), per origin (CORS headers) and per tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache import (
    CACHE_CONTROL,
    CACHED_PREFIXES,
    MAX_BODY,
    NOT_CACHED,
    VARY,
    CachedResponse,
    ResponseStore,
    etag_matches,
    response_key,
)
from app.deprecation import Deprecations
from app.errors import error_response
from app.express import ExpressLane
from app.guards import holds_nul, nul_refusal
from app.settings import Settings
from auth.errors import Unauthenticated, invalid_credential_response, rate_limited_response
from auth.principal import ANONYMOUS, Principal, Tier
from auth.usage import DATA_CLASSES, endpoint_class

if TYPE_CHECKING:
    from app.reference import ReferenceStore
    from auth.runtime import AccessRuntime

Header = tuple[bytes, bytes]

PROBES: Final = frozenset({"/health", "/ready"})
OWN_AUTH: Final = ("/oauth/", "/.well-known/")
CORS_METHODS: Final = ["GET", "POST", "OPTIONS"]
CORS_ALLOW_HEADERS: Final = ["Authorization", "X-API-Key", "Content-Type", "If-None-Match", "Accept-Language"]
CORS_EXPOSE_HEADERS: Final = [
    "ETag",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "X-Portal-Tier",
    "Deprecation",
    "Sunset",
    "Link",
]
# Paths and origins are the caller's to choose: what is memoised per path or origin is bounded.
MAX_PATHS: Final = 16_384
MAX_ORIGINS: Final = 1024

TIER_HEADERS: Final = {tier: (b"x-portal-tier", tier.value.encode()) for tier in Tier}
VARY_ORIGIN: Final = (b"vary", b"Origin")
VARY_HEADER: Final = (b"vary", VARY)

# The request headers the gateway reads, and their places in what `_read_headers` returns.
_READ: Final = {
    b"authorization": 0,
    b"x-api-key": 1,
    b"origin": 2,
    b"accept": 3,
    b"accept-language": 4,
    b"if-none-match": 5,
    b"access-control-request-method": 6,
}
_AUTHORIZATION, _API_KEY, _ORIGIN, _ACCEPT, _LANGUAGE, _IF_NONE_MATCH, _PREFLIGHT = range(7)


def _read_headers(raw: Sequence[Header]) -> list[bytes | None]:
    """The headers of `_READ` in one pass; the first of a repeated header, as Starlette's Headers.get."""
    found: list[bytes | None] = [None] * len(_READ)
    for name, value in raw:
        place = _READ.get(name)
        if place is not None and found[place] is None:
            found[place] = value
    return found


@dataclass(frozen=True, slots=True)
class PathFacts:
    """What the gateway needs to know of a path, worked out at its first request."""

    kind: str  # the endpoint class usage is counted under
    probe: bool  # a load balancer's probe: not limited or counted
    own_auth: bool  # OAuth endpoints: their own limit, their own authentication
    cacheable: bool  # GETs and HEADs of it go through the response cache
    audited: bool  # a data read: written to the audit log for the internal tier
    deprecation: tuple[Header, ...]
    express: bool  # its GETs go to the express lane (app/express.py), not through FastAPI's router

    @classmethod
    def of(cls, path: str, deprecations: Deprecations, express: ExpressLane | None) -> PathFacts:
        kind = endpoint_class(path)
        return cls(
            kind=kind,
            probe=path in PROBES,
            own_auth=path.startswith(OWN_AUTH),
            cacheable=path.startswith(CACHED_PREFIXES) and not path.startswith(NOT_CACHED),
            audited=kind in DATA_CLASSES,
            deprecation=deprecations.headers_for(path),
            express=express is not None and express.serves(path),
        )


class CorsHeaders:
    """The Access-Control-* headers of simple (non-preflight) responses, by the rules of Starlette's
    CORSMiddleware and from its configuration: its simple headers whenever an Origin is sent, with the
    origin itself instead of `*` where it must be named (credentials allowed, or a list of origins
    that holds it). Starlette also puts `Origin` in every response's Vary; see `_vary_origin`."""

    def __init__(self, middleware: CORSMiddleware) -> None:
        self.middleware = middleware
        self._simple = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in middleware.simple_headers.items()
        ]
        self._by_origin: dict[bytes, tuple[Header, ...]] = {}

    def for_origin(self, origin: bytes) -> tuple[Header, ...]:
        found = self._by_origin.get(origin)
        if found is None:
            if len(self._by_origin) >= MAX_ORIGINS:
                self._by_origin.clear()
            found = self._by_origin[origin] = self._learn(origin)
        return found

    def _learn(self, origin: bytes) -> tuple[Header, ...]:
        cors = self.middleware
        named = (
            cors.allow_credentials
            if cors.allow_all_origins
            else cors.is_allowed_origin(origin.decode("latin-1"))
        )
        if not named:
            return tuple(self._simple)
        return (
            *(h for h in self._simple if h[0] != b"access-control-allow-origin"),
            (b"access-control-allow-origin", origin),
        )


def _vary_origin(headers: list[Header]) -> list[Header]:
    """The headers with `Origin` in their Vary, as CORSMiddleware leaves every response: the CORS
    headers depend on it."""
    if VARY_HEADER in headers:  # the cache's own, which names it
        return headers
    vary = [value for name, value in headers if name.lower() == b"vary"]
    if not vary:
        return [*headers, VARY_ORIGIN]
    if any(token.strip().lower() == b"origin" for value in vary for token in value.split(b",")):
        return headers
    merged = (b"vary", b", ".join([*vary, b"Origin"]))
    return [*(h for h in headers if h[0].lower() != b"vary"), merged]


def _adding(send: Send, extra: list[Header]) -> Send:
    """`send` with the per-request headers (and Vary: Origin) added to the response start."""

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": _vary_origin(list(message.get("headers", []))) + extra}
        await send(message)

    return sender


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


class Gateway:
    """See the module documentation. `app` is everything behind the gateway: FastAPI's own stack;
    `express`, the routes whose GETs skip its router."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        access: AccessRuntime,
        store: ResponseStore,
        reference: ReferenceStore,
        express: ExpressLane | None = None,
    ) -> None:
        self.app = app
        self.express = express
        self.access = access
        self.store = store
        self.reference = reference  # the publication epoch is part of every cache key
        # Preflights are its to answer; for the rest it is the policy CorsHeaders applies.
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
        )
        self.cors_headers = CorsHeaders(self.cors)
        self.deprecations = Deprecations(settings.deprecations)
        self._paths: dict[str, PathFacts] = {}

    def _learn(self, path: str) -> PathFacts:
        if len(self._paths) >= MAX_PATHS:
            self._paths.clear()
        found = self._paths[path] = PathFacts.of(path, self.deprecations, self.express)
        return found

    def _behind(self, facts: PathFacts, method: str) -> ASGIApp:
        """Who answers a request the gateway does not: the express lane, or FastAPI's stack."""
        return self.express if facts.express and method == "GET" and self.express is not None else self.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        facts = self._paths.get(path) or self._learn(path)
        found = _read_headers(scope["headers"])
        origin = found[_ORIGIN]
        if origin is not None and method == "OPTIONS" and found[_PREFLIGHT] is not None:
            await self.cors(scope, receive, send)
            return
        cors = () if origin is None else self.cors_headers.for_origin(origin)
        responding = False  # set before the response starts: a later error is the server's to log
        try:
            # Access: who is calling, within their limit, counted.
            principal: Principal = ANONYMOUS
            refusal: Response | None = None
            if facts.probe:
                extra = [TIER_HEADERS[Tier.PUBLIC]]
            else:
                access = self.access
                api_key_id, failure = None, None
                authorization, api_key = found[_AUTHORIZATION], found[_API_KEY]
                if (authorization or api_key) and not facts.own_auth:
                    try:
                        resolved = await access.credentials.resolve(_text(authorization), _text(api_key))
                        principal, api_key_id = resolved.principal, resolved.api_key_id
                    except Unauthenticated as exc:
                        failure = exc
                client = scope.get("client")
                limits = access.limits
                rule, bucket = limits.bucket(principal, client[0] if client else "unknown", facts.own_auth)
                decision = (
                    limits.hit_local(rule, bucket) if limits.redis is None else await limits.hit(rule, bucket)
                )
                access.usage.record(principal.client_id, facts.kind, api_key_id)
                extra = decision.headers()
                extra.append(TIER_HEADERS[principal.tier])
                if failure is not None:
                    refusal = invalid_credential_response(failure, path)
                elif not decision.allowed:
                    refusal = rate_limited_response(decision, principal.tier, path)
            if facts.deprecation:
                extra += facts.deprecation
            if cors:
                extra += cors
            query: bytes = scope.get("query_string", b"")
            if refusal is None and holds_nul(path, query):
                refusal = nul_refusal(path)
            if refusal is not None:
                responding = True
                await _refuse(refusal, extra, scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal

            tier = principal.tier
            if tier is Tier.INTERNAL and facts.audited:
                # Internal-tier reads see exact counts: recorded before they are served.
                await self.access.audit_data_access(principal, path, query.decode("latin-1"))
            if tier is Tier.INTERNAL or not facts.cacheable or method not in ("GET", "HEAD"):
                responding = True
                await self._behind(facts, method)(scope, receive, _adding(send, extra))
                return

            # The response cache (never for the internal tier: every access of it is audited).
            store, reference = self.store, self.reference
            epoch = (reference.fresh() or await reference.current()).epoch
            key = response_key(epoch, path, query, tier, found[_ACCEPT] or b"", found[_LANGUAGE] or b"")
            cached = store.local(key)
            if cached is None and store.shared:
                cached = await store.fetch(key)
            if_none_match = found[_IF_NONE_MATCH]
            etag: Header | None = None  # set when If-None-Match gets a 304
            if if_none_match:
                # A held answer may carry the app's own ETag (GraphQL's, of the normalised document).
                current = _etag(key) if cached is None else _held_etag(cached, key)
                if _revalidated(if_none_match, current[1], cached is not None):
                    etag = current
            headers: Sequence[Header]
            if etag is not None:
                status, headers, body = 304, (etag, CACHE_CONTROL[tier], VARY_HEADER), b""
            elif cached is not None:
                store.hits += 1
                status, headers, body = (
                    cached.status,
                    cached.headers,
                    b"" if method == "HEAD" else cached.body,
                )
            else:
                store.misses += 1
                responding = True
                await self._behind(facts, method)(
                    scope, receive, self._keeping(send, key, tier, extra, method == "GET")
                )
                return
            responding = True
            await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
            await send({"type": "http.response.body", "body": body})
        except Exception as exc:
            # The gateway's own work failed (the database, say): the app's problem for it, as its
            # handlers answer for errors behind the gateway, and the error goes to the log.
            if not responding:
                await _refuse(error_response(exc, path), list(cors), scope, receive, send)
            raise

    def _keeping(self, send: Send, key: str, tier: Tier, extra: list[Header], keep: bool) -> Send:
        """`send` for a cache miss: every 200 gets the ETag, and (`keep`: a GET) a whole 200 answer of
        modest size is kept; an answer marked `Cache-Control: no-store` gets neither. What is kept
        holds no per-request header: none of `extra`, and no CORS header the app may have set."""
        kept: list[Header] | None = None  # the headers of an answer being kept
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal kept, size
            if message["type"] == "http.response.start":
                headers = [
                    h for h in message.get("headers", []) if not h[0].lower().startswith(b"access-control-")
                ]
                storable = message["status"] == 200 and not _no_store(headers)
                if storable:
                    present = {name.lower() for name, _ in headers}
                    headers += [
                        h for h in (_etag(key), CACHE_CONTROL[tier], VARY_HEADER) if h[0] not in present
                    ]
                headers = _vary_origin(headers)
                if keep and storable:
                    kept = headers
                await send({**message, "headers": headers + extra})
                return
            if message["type"] == "http.response.body" and kept is not None:
                body: bytes = message.get("body", b"")
                chunks.append(body)
                size += len(body)
                if size > MAX_BODY:  # served, not kept
                    kept = None
                    chunks.clear()
                await send(message)
                if kept is not None and not message.get("more_body", False):
                    await self.store.put(key, CachedResponse(200, kept, b"".join(chunks)))
                return
            await send(message)

        return capture


def _etag(key: str) -> Header:
    return (b"etag", b'"%s"' % key.encode())


def _no_store(headers: list[Header]) -> bool:
    return any(name.lower() == b"cache-control" and b"no-store" in value for name, value in headers)


def _held_etag(cached: CachedResponse, key: str) -> Header:
    for header in cached.headers:
        if header[0] == b"etag":
            return header
    return _etag(key)


def _revalidated(if_none_match: bytes, etag: bytes, held: bool) -> bool:
    """Whether `If-None-Match` gets a 304. The key is the answer's digest, so a match is one even when
    this process holds no copy; `*` only when it does."""
    tags = if_none_match.decode("latin-1")
    return etag_matches(tags, etag.decode("latin-1")) and (held or tags.strip() != "*")


async def _refuse(
    response: Response, extra: list[Header], scope: Scope, receive: Receive, send: Send
) -> None:
    """Send a refusal the gateway made itself, with the per-request headers."""
    response.raw_headers += [*extra, VARY_ORIGIN]
    await response(scope, receive, send)

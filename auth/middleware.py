"""AccessMiddleware: the pure ASGI layer that resolves the caller, applies rate limits and counts usage.

It wraps everything below it (the response cache included), so every response, cached or not, is
limited and carries `RateLimit-*` and `X-Portal-Tier`. `/health` and `/ready` are exempt (load
balancers probe them); `/oauth/*` and `/.well-known/*` carry their own per-IP limit and authenticate
clients themselves, so their Authorization header is not read here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from auth.errors import RateLimited, Unauthenticated
from auth.principal import ANONYMOUS, Tier
from auth.usage import DATA_CLASSES, endpoint_class

if TYPE_CHECKING:
    from auth.runtime import AccessRuntime

log = logging.getLogger("portal.access")

PROBES = frozenset({"/health", "/ready"})


class AccessMiddleware:
    def __init__(self, app: ASGIApp, runtime: AccessRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        state = scope.setdefault("state", {})
        if path in PROBES:
            state["principal"] = ANONYMOUS
            await self.app(scope, receive, _with_headers(send, [(b"x-portal-tier", b"public")]))
            return
        runtime = self.runtime
        own_auth = path.startswith(("/oauth/", "/.well-known/"))
        failure: Unauthenticated | None = None
        principal, api_key_id = ANONYMOUS, None
        if not own_auth:
            try:
                resolved = await runtime.credentials.resolve(Headers(scope=scope))
                principal, api_key_id = resolved.principal, resolved.api_key_id
            except Unauthenticated as exc:
                failure = exc
        state["principal"] = principal
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        item, key = runtime.limits.bucket(principal, client_ip, own_auth)
        decision = await runtime.limits.hit(item, key)
        extra = [*decision.headers(), (b"x-portal-tier", principal.tier.value.encode())]
        runtime.usage.record(principal.client_id, path, api_key_id)
        if failure is not None or not decision.allowed:
            headers = {name.decode(): value.decode() for name, value in extra}
        if failure is not None:
            # RFC 6750 3: the caller learns why, never what the credential was.
            headers["WWW-Authenticate"] = (
                f'Bearer realm="portal", error="invalid_token", error_description="{failure.detail}"'
            )
            response = problem_response(
                failure.status, failure.code, failure.title, failure.detail, instance=path, headers=headers
            )
            await response(scope, receive, send)
            return
        if not decision.allowed:
            headers["Retry-After"] = str(max(1, decision.reset_after))
            response = problem_response(
                RateLimited.status,
                RateLimited.code,
                RateLimited.title,
                f"the {principal.tier.value} tier allows {decision.limit} requests per {decision.window} s; "
                f"retry in {max(1, decision.reset_after)} s, or ask for a department credential",
                instance=path,
                headers=headers,
                limit=decision.limit,
                tier=principal.tier.value,
            )
            await response(scope, receive, send)
            return
        if principal.tier is Tier.INTERNAL and endpoint_class(path) in DATA_CLASSES:
            # Internal-tier reads see exact counts: recorded before they are served, never after.
            await runtime.audit_data_access(principal, path, scope.get("query_string", b"").decode())
        await self.app(scope, receive, _with_headers(send, extra))


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sender

"""Deprecation and sunset announcements: `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link` headers.

Breaking changes go to a new version (`/v2`); the old routes keep working until their sunset and say
so on every response, so integrators see the move coming in their logs. Deprecations are settings
(`PORTAL_DEPRECATIONS`), so announcing one needs no code change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime

from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Deprecation(BaseModel):
    path_prefix: str  # e.g. "/v1/data"
    deprecated_on: date
    sunset_on: date
    successor: str | None = None  # e.g. "/v2/data"
    documentation: str | None = None  # a page that explains the move

    def headers(self) -> list[tuple[bytes, bytes]]:
        since = int(datetime.combine(self.deprecated_on, datetime.min.time(), UTC).timestamp())
        sunset = format_datetime(datetime.combine(self.sunset_on, datetime.min.time(), UTC), usegmt=True)
        result = [(b"deprecation", f"@{since}".encode()), (b"sunset", sunset.encode())]
        links = []
        if self.successor:
            links.append(f'<{self.successor}>; rel="successor-version"')
        if self.documentation:
            links.append(f'<{self.documentation}>; rel="deprecation"; type="text/html"')
        if links:
            result.append((b"link", ", ".join(links).encode()))
        return result


class DeprecationHeaders:
    """Pure ASGI: adds the announcement headers to every response of a deprecated path."""

    def __init__(self, app: ASGIApp, deprecations: list[Deprecation]) -> None:
        self.app = app
        # Longest prefix first, so a specific announcement wins over a general one.
        self.deprecations = sorted(deprecations, key=lambda d: len(d.path_prefix), reverse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.deprecations:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        found = next((d for d in self.deprecations if path.startswith(d.path_prefix)), None)
        if found is None:
            await self.app(scope, receive, send)
            return
        extra = found.headers()

        async def announce(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, announce)

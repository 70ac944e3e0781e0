"""Deprecation and sunset announcements: `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link` headers.

Breaking changes go to a new version (`/v2`); the old routes keep working until their sunset and say
so on every response, so integrators see the move coming in their logs. Deprecations are settings
(`PORTAL_DEPRECATIONS`), so announcing one needs no code change; the gateway (app/gateway.py) adds
the headers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime

from pydantic import BaseModel


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


class Deprecations:
    """The announcements that apply to a path; the gateway (app/gateway.py) adds them to every response
    of that path, cached answers and refusals included."""

    def __init__(self, deprecations: list[Deprecation]) -> None:
        # Longest prefix first, so a specific announcement wins over a general one; headers encoded once.
        ordered = sorted(deprecations, key=lambda d: len(d.path_prefix), reverse=True)
        self._headers = [(d.path_prefix, tuple(d.headers())) for d in ordered]

    def headers_for(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        return next((headers for prefix, headers in self._headers if path.startswith(prefix)), ())

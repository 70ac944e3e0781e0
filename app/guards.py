"""Request guards that run before routing: inputs no database or log should ever see."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import InvalidParameter, problem_response

# PostgreSQL refuses NUL in text outright (other controls are just text: a GraphQL query has line
# breaks, and an area code with a tab is simply unknown).
_CONTROL: Final = re.compile("\x00")


class ControlCharacterGuard:
    """Refuse, with a 400 problem, any path or query parameter holding a NUL character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw: bytes = scope.get("query_string", b"")
            # The cheap test first: a NUL arrives percent-encoded (or, from a lax client, raw).
            suspect = b"%00" in raw or b"\x00" in raw
            if "\x00" in scope.get("path", "") or (
                suspect and _CONTROL.search(unquote(raw.decode("latin-1")))
            ):
                response = problem_response(
                    InvalidParameter.status,
                    InvalidParameter.code,
                    InvalidParameter.title,
                    "parameters must not contain NUL characters (%00)",
                    instance=scope.get("path", ""),
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""Request guards that run before routing: inputs no database or log should ever see."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import InvalidParameter, problem_response

# C0 controls and DEL: PostgreSQL refuses NUL in text outright, and none belongs in a code or a name.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class ControlCharacterGuard:
    """Refuse, with a 400 problem, any path or query parameter holding a control character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote(scope.get("query_string", b"").decode("latin-1"))
            if _CONTROL.search(scope.get("path", "")) or _CONTROL.search(query):
                response = problem_response(
                    InvalidParameter.status,
                    InvalidParameter.code,
                    InvalidParameter.title,
                    "parameters must not contain control characters (such as %00 or a line break)",
                    instance=scope.get("path", ""),
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

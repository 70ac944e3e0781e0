"""Request guards that run before routing (in the gateway, app/gateway.py): inputs no database or log
should ever see."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.responses import Response

from app.errors import InvalidParameter, problem_response


def holds_nul(path: str, query: bytes) -> bool:
    """Whether the path or a query parameter holds a NUL character.

    PostgreSQL refuses NUL in text outright; other controls are just text (a GraphQL query has line
    breaks, and an area code with a tab is simply unknown)."""
    # The cheap test first: a NUL arrives percent-encoded (or, from a lax client, raw).
    if b"%00" not in query and b"\x00" not in query:
        return "\x00" in path
    return "\x00" in path or "\x00" in unquote(query.decode("latin-1"))


def nul_refusal(path: str) -> Response:
    """The 400 problem that answers a request `holds_nul` found."""
    return problem_response(
        InvalidParameter.status,
        InvalidParameter.code,
        InvalidParameter.title,
        "parameters must not contain NUL characters (%00)",
        instance=path,
    )

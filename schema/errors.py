"""GraphQL errors: domain errors keep their stable `code`; limits get codes of their own; the rest is masked."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from graphql import GraphQLError

from app.errors import DomainError

log = logging.getLogger("portal.graphql")

MALFORMED: Final = "malformed-query"
INVALID: Final = "invalid-query"
TOO_DEEP: Final = "query-too-deep"
TOO_MANY_ALIASES: Final = "too-many-aliases"
TOO_MANY_TOKENS: Final = "too-many-tokens"
TIMEOUT: Final = "timeout"
INTERNAL: Final = "internal-error"
# Apollo's automatic persisted queries protocol: clients match this message and code to resend the text.
PERSISTED_QUERY_NOT_FOUND: Final = "PERSISTED_QUERY_NOT_FOUND"


class QueryTooCostly(DomainError):
    """More observations than one request may ask for (the same cap as REST's, summed over the query)."""

    status = 422
    code = "query-too-costly"
    title = "Query too costly"

    def __init__(self, cells: int, limit: int) -> None:
        super().__init__(
            f"the query asks for at least {cells} cells; the limit is {limit} per request: "
            "ask for fewer areas, periods or breakdowns, or split the query",
            cells=cells,
            limit=limit,
        )


class PersistedQueryMismatch(DomainError):
    code = "persisted-query-hash-mismatch"
    title = "Persisted query hash mismatch"


# Errors raised by graphql-core and Strawberry's limiters carry no code; their messages are stable.
_LIMIT_MESSAGES: Final = (
    (re.compile(r"exceeds maximum operation depth"), TOO_DEEP),
    (re.compile(r"aliases found\. Allowed"), TOO_MANY_ALIASES),
    (re.compile(r"Document contains more than \d+ tokens"), TOO_MANY_TOKENS),
    (re.compile(r"^Syntax Error"), MALFORMED),
)


def error(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def portal_error(err: GraphQLError) -> GraphQLError:
    """The form in which an error leaves the API: a code always, internals never."""
    original = err.original_error
    if isinstance(original, DomainError):
        extensions = {"code": original.code, "status": original.status, **original.extensions}
        return GraphQLError(
            original.detail, err.nodes, err.source, err.positions, err.path, extensions=extensions
        )
    if original is None:
        if err.extensions and "code" in err.extensions:
            return err
        code = next((c for pattern, c in _LIMIT_MESSAGES if pattern.search(err.message)), INVALID)
        return GraphQLError(
            err.message, err.nodes, err.source, err.positions, err.path, extensions={"code": code}
        )
    if isinstance(original, GraphQLError):
        return portal_error(original)
    # Logged with its traceback for operators; the caller learns only that it failed.
    log.error("GraphQL resolver failed at %s", err.path, exc_info=original)
    return GraphQLError(
        "the server failed to answer this field; the error was logged",
        err.nodes,
        err.source,
        err.positions,
        err.path,
        extensions={"code": INTERNAL},
    )

"""Domain errors and their rendering as RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://portal.dansovn.example/problems/"


class DomainError(Exception):
    """An error a caller can act on; `code` is stable and also surfaces in GraphQL extensions."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidParameter(DomainError):
    status = 400
    code = "invalid-parameter"
    title = "Invalid parameter"


class NotFound(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class UnknownGeography(NotFound):
    code = "unknown-geography"
    title = "Unknown geography"


class UnknownArea(NotFound):
    code = "unknown-area"
    title = "Unknown area"


class UnknownIndicator(NotFound):
    code = "unknown-indicator"
    title = "Unknown indicator"


class UnknownRelease(NotFound):
    code = "unknown-release"
    title = "Unknown release"


class Unprocessable(DomainError):
    """A well-formed request the data cannot answer (impossible combination, too fine for the tier)."""

    status = 422
    code = "unprocessable"
    title = "Request cannot be answered"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service-unavailable"
    title = "Service unavailable"


class QueryTimeout(ServiceUnavailable):
    code = "query-timeout"
    title = "Query took too long"


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable error code; also in GraphQL extensions"},
        "instance": {"type": "string"},
    },
}

# The errors every /v1 route may answer with, documented once (RFC 9457 problem details).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}}}
    for status, description in (
        (400, "Invalid parameter"),
        (401, "Invalid, expired or revoked credential"),
        (403, "The credential lacks a scope"),
        (404, "Unknown resource"),
        (422, "A well-formed request the data cannot answer (finer than published, outside the release)"),
        (429, "Rate limit reached; see Retry-After"),
        (503, "Not ready, or a query ran out of time"),
    )
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def crash_response(path: str) -> Response:
    """The 500 of an unexpected error: logged by the server; the caller learns nothing of internals."""
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "the server failed to answer; the error was logged",
        instance=path,
    )


def error_response(exc: BaseException, path: str) -> Response:
    """The answer to an unexpected error: a 503 to retry when the database connection was lost (the
    pool has replaced it by then), else the 500 problem."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return problem_response(
            503,
            "database-unavailable",
            "Database connection lost",
            "the connection to the database was lost and has been replaced; retry the request",
            instance=path,
            headers={"Retry-After": "1"},
        )
    return crash_response(path)


def _describe_validation(errors: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    details: list[dict[str, Any]] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
        details.append({"parameter": ".".join(location), "message": error.get("msg", "invalid")})
    summary = "; ".join(f"{d['parameter'] or 'request'}: {d['message']}" for d in details)
    return summary or "the request is invalid", details


def install_problem_handlers(app: FastAPI) -> None:
    """Every error leaves the API as problem+json: domain errors, validation, routing, and crashes."""

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, instance=request.url.path, **exc.extensions
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail, errors = _describe_validation(exc.errors())
        return problem_response(
            400,
            InvalidParameter.code,
            InvalidParameter.title,
            detail,
            instance=request.url.path,
            errors=errors,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}; see /docs for the API"
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(
            exc.status_code, code, _title(exc.status_code), detail, instance=request.url.path, headers=headers
        )

    async def on_database_error(request: Request, exc: Exception) -> Response:
        return error_response(exc, request.url.path)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return crash_response(request.url.path)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(Exception, on_crash)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"

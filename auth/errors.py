"""Errors of the access layer: problem+json for API callers, RFC 6749 bodies for the OAuth endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import orjson
from starlette.responses import Response

from app.errors import DomainError, NotFound, problem_response

if TYPE_CHECKING:
    from auth.limits import Decision
    from auth.principal import Tier


class Unauthenticated(DomainError):
    """A credential was sent but is not valid (unknown, expired, revoked, forged, suspended client)."""

    status = 401
    code = "invalid-credential"
    title = "Invalid credential"


class InsufficientScope(DomainError):
    status = 403
    code = "insufficient-scope"
    title = "Insufficient scope"


class RateLimited(DomainError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class UnknownDepartment(NotFound):
    code = "unknown-department"
    title = "Unknown department"


class UnknownClient(NotFound):
    code = "unknown-client"
    title = "Unknown client"


class UnknownApiKey(NotFound):
    code = "unknown-api-key"
    title = "Unknown API key"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class OAuthError(Exception):
    """An RFC 6749 section 5.2 (or RFC 7591 section 3.2.2) error; rendered as its JSON body."""

    status: ClassVar[int] = 400

    def __init__(self, error: str, description: str, status: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status or (401 if error in ("invalid_client", "invalid_token") else 400)

    def response(self) -> Response:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status_code == 401:
            # RFC 6749 5.2: a failed client authentication names the scheme the client should use.
            scheme = "Bearer" if self.error == "invalid_token" else "Basic"
            headers["WWW-Authenticate"] = f'{scheme} realm="portal", error="{self.error}"'
        body = {"error": self.error, "error_description": self.description}
        return Response(
            orjson.dumps(body), status_code=self.status_code, media_type="application/json", headers=headers
        )


def invalid_credential_response(failure: Unauthenticated, path: str) -> Response:
    """The 401 for a credential that does not stand; RFC 6750 3: the caller learns why, never what the
    credential was."""
    challenge = f'Bearer realm="portal", error="invalid_token", error_description="{failure.detail}"'
    return problem_response(
        failure.status,
        failure.code,
        failure.title,
        failure.detail,
        instance=path,
        headers={"WWW-Authenticate": challenge},
    )


def rate_limited_response(decision: Decision, tier: Tier, path: str) -> Response:
    """The 429 for a spent limit, with `Retry-After`."""
    retry = max(1, decision.reset_after)
    return problem_response(
        RateLimited.status,
        RateLimited.code,
        RateLimited.title,
        f"the {tier.value} tier allows {decision.limit} requests per {decision.window} s; "
        f"retry in {retry} s, or ask for a department credential",
        instance=path,
        headers={"Retry-After": str(retry)},
        limit=decision.limit,
        tier=tier.value,
    )

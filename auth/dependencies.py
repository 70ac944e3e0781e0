"""FastAPI dependencies of the access layer: the request's Principal and scope guards for routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from auth.principal import ANONYMOUS, Principal
from auth.scopes import require_scope


async def get_principal(request: Request) -> Principal:
    """The caller as the gateway (app/gateway.py) resolved it; anonymous when no gateway is in front.

    `async def` so that FastAPI calls it on the event loop rather than in its thread pool."""
    return principal_of(request)


def principal_of(request: Request) -> Principal:
    """The caller the gateway put in the request's state (anonymous when none)."""
    state = request.scope.get("state") or {}
    principal = state.get("principal", ANONYMOUS)
    return principal if isinstance(principal, Principal) else ANONYMOUS


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(scope: str) -> Callable[[Principal], Principal]:
    """A dependency that lets the route run only for callers holding `scope` (via require_scope)."""

    def check(principal: PrincipalDep) -> Principal:
        require_scope(principal, scope)
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check

"""Installs the access layer on the app: OAuth, admin and limits routers, and the AccessRuntime the gateway
(app/gateway.py) checks every request with."""

from __future__ import annotations

from fastapi import FastAPI

from app.errors import PROBLEM_RESPONSES
from app.settings import Settings
from auth.runtime import AccessRuntime


def install_access(app: FastAPI, settings: Settings) -> AccessRuntime:
    """Add the routes and `app.state.access`; the lifespan runs `app.state.access.running(sessions)`.

    The checks themselves (credentials, limits, usage, audit) run in the gateway, in front of every
    other layer, so cached answers and 401/429 refusals are treated like any other response."""
    from app.api.v1 import admin, limits
    from auth import endpoints

    runtime = AccessRuntime(settings)
    app.state.access = runtime
    app.include_router(endpoints.router)
    app.include_router(limits.router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.include_router(admin.router, prefix="/v1", responses=PROBLEM_RESPONSES)
    return runtime

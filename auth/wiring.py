"""Installs the access layer on the app: OAuth and admin routers, and AccessMiddleware."""

from __future__ import annotations

from fastapi import FastAPI

from app.settings import Settings
from auth.middleware import AccessMiddleware
from auth.runtime import AccessRuntime


def install_access(app: FastAPI, settings: Settings) -> AccessRuntime:
    """Add the routes and the middleware; the lifespan runs `app.state.access.running(sessions)`.

    Call it after every middleware that must sit inside the access check (the response cache) and
    before CORS, so that 401 and 429 answers still carry CORS headers for browser apps.
    """
    from app.api.v1 import admin, limits
    from auth import endpoints

    runtime = AccessRuntime(settings)
    app.state.access = runtime
    app.include_router(endpoints.router)
    app.include_router(limits.router, prefix="/v1")
    app.include_router(admin.router, prefix="/v1")
    app.add_middleware(AccessMiddleware, runtime=runtime)
    return runtime

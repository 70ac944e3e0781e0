"""The composition root: `create_app(settings)` wires settings, database, routers and error handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.api import health
from app.api.v1 import catalog, data, geography, indicators, releases
from app.cache import ResponseCache, ResponseStore
from app.db import create_engine, session_factory
from app.deprecation import DeprecationHeaders
from app.errors import PROBLEM_RESPONSES, install_problem_handlers
from app.guards import ControlCharacterGuard
from app.http import OrjsonResponse
from app.reference import ReferenceStore
from app.settings import Settings
from auth.wiring import install_access
from schema.router import graphql_router

API_DESCRIPTION = """
Aggregated, privacy-filtered population indicators of Vietnamese provinces, from the provincial
population register. Open data for the public (no key needed), finer detail for departments.

Errors are RFC 9457 `application/problem+json`. Lists are objects with `items`, `total` and a `next`
link when there are more pages.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = ResponseStore(
        settings.cache_max_bytes, settings.redis_url, settings.cache_ttl_seconds, settings.cache_epoch_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, statement_timeout=settings.query_timeout_seconds)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.reference = ReferenceStore(app.state.sessions, settings.cache_epoch_seconds)
        try:
            async with app.state.access.running(app.state.sessions):
                yield
        finally:
            await store.close()
            await engine.dispose()

    app = FastAPI(
        title="Population data portal",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        openapi_url="/v1/openapi.json",
        telemetry={"tracing": settings.telemetry, "metrics": settings.telemetry, "logs": settings.telemetry},
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(health.router)
    for router in (geography.router, indicators.router, releases.router, data.router, catalog.router):
        app.include_router(router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.state.response_store = store
    app.add_middleware(ResponseCache, store=store)
    app.add_middleware(DeprecationHeaders, deprecations=settings.deprecations)
    app.add_middleware(ControlCharacterGuard)
    # GraphQL over the same services; its contract is schema/schema.graphql, not the OpenAPI document.
    app.include_router(graphql_router(settings), prefix="/graphql", include_in_schema=False)
    # Access: OAuth, admin and limits routes; AccessMiddleware wraps every middleware added above it
    # (the response cache) and sits inside CORS, so 401/429 answers carry CORS headers.
    install_access(app, settings)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match", "Accept-Language"],
        expose_headers=[
            "ETag",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "X-Portal-Tier",
            "Deprecation",
            "Sunset",
            "Link",
        ],
    )
    return app

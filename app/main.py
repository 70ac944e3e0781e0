"""The composition root: `create_app(settings)` wires settings, database, routers, error handling and the
gateway in front of them all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import health
from app.api.v1 import catalog, data, geography, indicators, releases
from app.cache import ResponseStore
from app.db import create_engine, session_factory
from app.errors import PROBLEM_RESPONSES, install_problem_handlers
from app.express import ExpressLane
from app.gateway import Gateway
from app.http import OrjsonResponse
from app.query.rows import PublishedRows
from app.reference import ReferenceStore
from app.repositories.releases import serving_reads
from app.settings import Settings
from auth.wiring import install_access
from schema.router import graphql_router

API_DESCRIPTION = """
Aggregated, privacy-filtered population indicators of Vietnamese provinces, from the provincial
population register. Open data for the public (no key needed), finer detail for departments.

Errors are RFC 9457 `application/problem+json`. Lists are objects with `items`, `total` and a `next`
link when there are more pages.
"""


class PortalApp(FastAPI):
    """FastAPI with the gateway (app/gateway.py) in front of the middleware stack Starlette builds,
    its error middleware included, and called straight from the server for HTTP when FastAPI has
    nothing to do first (no telemetry). In process, a cached answer took 4.3 us behind Starlette's
    error, telemetry and body-limit layers, 3.9 us in front of them and 3.4 us called straight."""

    front: Callable[[ASGIApp], ASGIApp] | None = None  # wraps the stack, as a middleware class does
    direct = False  # HTTP goes straight to the stack (set when telemetry is off)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.front is None else self.front(stack)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.direct or scope["type"] != "http" or self.root_path:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # what Starlette's own __call__ does before the stack
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = ResponseStore(
        settings.cache_max_bytes,
        settings.redis_url,
        settings.cache_ttl_seconds,
        prefix=f"{settings.redis_key_prefix}:cache:",  # deployments (and test runs) sharing a server
    )

    reference = ReferenceStore(None, settings.cache_epoch_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, statement_timeout=settings.query_timeout_seconds)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        reference.bind(app.state.sessions)
        serving = serving_reads(engine, settings)
        # Published rows held in process (app/query/rows.py), shared by REST and GraphQL.
        app.state.rows = PublishedRows(settings.row_cache_max_bytes, serving)
        try:
            async with app.state.access.running(app.state.sessions):
                yield
        finally:
            await store.close()
            reference.bind(None)
            if serving is not None:
                serving.close()
            await engine.dispose()

    app = PortalApp(
        title="Population data portal",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        openapi_url="/v1/openapi.json",
        telemetry={"tracing": settings.telemetry, "metrics": settings.telemetry, "logs": settings.telemetry},
    )
    app.state.settings = settings
    app.state.reference = reference
    install_problem_handlers(app)
    app.include_router(health.router)
    for router in (geography.router, indicators.router, releases.router, data.router, catalog.router):
        app.include_router(router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.state.response_store = store
    # GraphQL over the same services; its contract is schema/schema.graphql, not the OpenAPI document.
    app.include_router(graphql_router(settings), prefix="/graphql", include_in_schema=False)
    # Access: OAuth, admin and limits routes, and the runtime the gateway checks every request with.
    access = install_access(app, settings)
    # GETs of the busiest route skip FastAPI's router (app/express.py). With telemetry on, FastAPI's
    # stack instruments every request, so all of them go through it.
    express = (
        None
        if settings.telemetry
        else ExpressLane(app, [Route("/v1/data/{indicator}", data.get_data_express, methods=["GET"])])
    )
    app.front = partial(
        Gateway, settings=settings, access=access, store=store, reference=reference, express=express
    )
    app.direct = not settings.telemetry  # FastAPI's instrumentation sits in its own __call__
    return app

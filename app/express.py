"""The express lane: GET routes the gateway hands a cache miss to itself, past FastAPI's router.

FastAPI's dispatch of a request (its router's matching across the included routers, then the
route's parameter and dependency handling) cost ~55 us more than this lane does, of an uncached
data request's ~430 us in process. The busiest route validates its own query and declares no
dependencies (app/api/params.py), so none of that does anything for it. Here its endpoint runs
behind the same exception handlers the app's stack applies, built as Starlette builds that stack,
so errors leave as the same problem+json.
The route stays registered with FastAPI too: that is its documented operation (OpenAPI), and what
serves it when the lane does not (HEAD; telemetry on, which instruments FastAPI's stack).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send


class ExpressLane:
    def __init__(self, app: FastAPI, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        # As Starlette's build_middleware_stack splits the handlers: crashes to the outer layer.
        crash: Any = None
        handlers: dict[Any, Any] = {}
        for key, handler in app.exception_handlers.items():
            if key in (500, Exception):
                crash = handler
            else:
                handlers[key] = handler
        self._app = ServerErrorMiddleware(
            ExceptionMiddleware(Router(list(routes)), handlers=handlers, debug=app.debug),
            handler=crash,
            debug=app.debug,
        )

    def serves(self, path: str) -> bool:
        """Whether a GET of `path` is the lane's (worked out once per path by the gateway)."""
        return any(route.path_regex.match(path) for route in self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

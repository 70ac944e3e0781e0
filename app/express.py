"""The express lane: GET routes the gateway hands a cache miss to itself, past FastAPI's router.

FastAPI's dispatch of a request (its router's matching across the included routers, then the
route's parameter and dependency handling) cost ~55 us more than this lane does, of an uncached
data request's ~430 us in process. The busiest route validates its own query and declares no
dependencies (app/api/params.py), so none of that does anything for it. Nor do Starlette's layers
around an endpoint (error middleware, exception middleware, router, route, each with its own send
wrapper: ~15 us more, of ~230 us), so the lane calls the endpoint itself and applies the app's
exception handlers as those layers do: a handled error gets its handler's answer, anything else the
app's 500 handler's answer and is raised on for the server to log.
The route stays registered with FastAPI too: that is its documented operation (OpenAPI), and what
serves it when the lane does not (HEAD; telemetry on, which instruments FastAPI's stack).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]

MAX_PATHS: Final = 16_384  # paths are the caller's to choose: the matches memoised are bounded


def _awaitable(handler: Callable[..., Any]) -> Handler:
    """An exception handler as an async callable (Starlette runs a plain function in its thread pool)."""
    if inspect.iscoroutinefunction(handler):
        return handler

    async def threaded(request: Request, exc: Exception) -> Response:
        response: Response = await run_in_threadpool(handler, request, exc)
        return response

    return threaded


class ExpressLane:
    def __init__(self, app: FastAPI, routes: Sequence[Route]) -> None:
        """`routes`: Starlette routes whose endpoint is an async function of the request alone."""
        self.routes = tuple(routes)
        self._crash: Handler | None = None
        self._status_handlers: dict[int, Handler] = {}
        self._handlers: dict[type[BaseException], Handler] = {}
        # As Starlette's build_middleware_stack splits them: crashes to the outer layer, the rest by
        # status code (HTTP errors) or by exception class.
        for key, handler in app.exception_handlers.items():
            if key in (500, Exception):
                self._crash = _awaitable(handler)
            elif isinstance(key, int):
                self._status_handlers[key] = _awaitable(handler)
            else:
                self._handlers[key] = _awaitable(handler)
        self._matched: dict[str, tuple[Endpoint, dict[str, Any]]] = {}

    def serves(self, path: str) -> bool:
        """Whether a GET of `path` is the lane's (worked out once per path by the gateway)."""
        return any(route.path_regex.match(path) for route in self.routes)

    def _match(self, scope: Scope) -> tuple[Endpoint, dict[str, Any]]:
        path: str = scope["path"]
        found = self._matched.get(path)
        if found is None:
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    found = (route.endpoint, child["path_params"])
                    break
            else:
                raise LookupError(f"the express lane does not serve {path}")  # the gateway asked serves()
            if len(self._matched) >= MAX_PATHS:
                self._matched.clear()
            self._matched[path] = found
        return found

    def _handler_for(self, exc: Exception) -> Handler | None:
        """The handler Starlette's exception middleware would pick: by status code for an HTTP
        error, else by the nearest class in the exception's MRO."""
        if isinstance(exc, HTTPException):
            by_status = self._status_handlers.get(exc.status_code)
            if by_status is not None:
                return by_status
        for kind in type(exc).__mro__:
            handler = self._handlers.get(kind)
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint, path_params = self._match(scope)
        scope["path_params"] = dict(path_params)
        request = Request(scope, receive, send)
        responding = False
        try:
            try:
                response = await endpoint(request)
            except Exception as exc:
                handler = self._handler_for(exc)
                if handler is None:
                    raise
                response = await handler(request, exc)
                exc.__traceback__ = None  # handlers may keep an instance; tracebacks would pile up
            responding = True
            await response(scope, receive, send)
        except Exception as exc:
            # As Starlette's error middleware: the app's 500 answer, then raised on to the server.
            if not responding and self._crash is not None:
                crash = await self._crash(request, exc)
                await crash(scope, receive, send)
            raise

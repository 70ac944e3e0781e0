"""`/graphql`: Strawberry's FastAPI router with persisted queries, ETags and 304s, cached answers and a
per-request timeout."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import replace
from functools import lru_cache, partial
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter
from fastapi import Request, Response
from graphql import GraphQLError, parse, print_ast
from graphql.error import GraphQLSyntaxError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from app.errors import UnknownRelease
from app.settings import Settings
from schema.build import build_schema
from schema.context import PortalContext, graphql_context
from schema.errors import PERSISTED_QUERY_NOT_FOUND, TIMEOUT, PersistedQueryMismatch, error, portal_error

VARY = "Accept-Language, Authorization, X-API-Key"
MAX_AGE_S = 60


class LruStore:
    """A bounded in-process map: persisted query texts by hash, and answers by ETag."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


@lru_cache(maxsize=1024)
def normalized(query: str) -> str | None:
    """The query's canonical text (whitespace, comments and commas do not change an ETag)."""
    try:
        return print_ast(parse(query))
    except GraphQLSyntaxError:
        return None


def etag_of(release: str, query: str, request_data: GraphQLRequestData, tier: str, lang: str) -> str:
    """ETag from (release, normalized query, tier), as REST's, plus the variables and label language."""
    key = orjson.dumps(
        [release, query, request_data.variables, request_data.operation_name, tier, lang],
        option=orjson.OPT_SORT_KEYS,
    )
    return '"g' + hashlib.sha256(key).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in {t.strip().removeprefix("W/") for t in header.split(",")}


class PortalGraphQLRouter(GraphQLRouter[PortalContext, None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(build_schema(settings), context_getter=graphql_context, graphql_ide="graphiql")
        self.settings = settings
        self.persisted = LruStore(10_000)  # sha256 -> query text (APQ)
        self.answers = LruStore(settings.graphql_cache_size)  # ETag -> data of an error-free answer

    async def get_sub_response(self, request: Request) -> Response:
        # Strawberry keeps the sub-response on the router, which concurrent requests share; the context
        # dependency keeps each request's own on its state instead.
        response: Response = request.state.graphql_response
        return response

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        if sub_response.status_code == 304:
            return Response(status_code=304, headers=dict(sub_response.headers))
        return super().create_response(response_data, sub_response)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: PortalContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            request_data, persisted = self._persisted(request_data)
        except LookupError:
            return ExecutionResult(
                data=None, errors=[error("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)]
            )
        except PersistedQueryMismatch as exc:
            return ExecutionResult(
                data=None, errors=[portal_error(GraphQLError(exc.detail, original_error=exc))]
            )
        etag = None
        if (request_adapter.method == "GET" or persisted) and request_data.query:
            etag = await self._etag(context, request_data)
        if etag is not None:
            sub_response.headers["ETag"] = etag
            sub_response.headers["Cache-Control"] = (
                f"{'public' if context.principal.tier.value == 'public' else 'private'}, max-age={MAX_AGE_S}"
            )
            sub_response.headers["Vary"] = VARY
            if _matches(request.headers.get("if-none-match"), etag):
                sub_response.status_code = 304
                return ExecutionResult(data=None, errors=None)
            cached = self.answers.get(etag)
            if cached is not None:
                return ExecutionResult(data=cached, errors=None)
        try:
            async with asyncio.timeout(self.settings.graphql_timeout_s):
                result = await super().execute_single(
                    request, request_adapter, sub_response, context, root_value, request_data
                )
        except TimeoutError:
            return ExecutionResult(
                data=None,
                errors=[
                    error(
                        f"the query did not finish within {self.settings.graphql_timeout_s:g} s; ask for less",
                        TIMEOUT,
                    )
                ],
            )
        if etag is not None:
            if result.errors:
                for name in ("ETag", "Cache-Control"):
                    del sub_response.headers[name]
            else:
                self.answers.put(etag, result.data)
        return result

    def _persisted(self, request_data: GraphQLRequestData) -> tuple[GraphQLRequestData, bool]:
        """APQ: a hash alone names a stored query; a hash with its text stores it (after checking it)."""
        extension = (request_data.extensions or {}).get("persistedQuery")
        if not isinstance(extension, dict):
            return request_data, False
        digest = extension.get("sha256Hash")
        if not isinstance(digest, str):
            raise PersistedQueryMismatch("extensions.persistedQuery.sha256Hash must be a hex string")
        if request_data.query:
            if hashlib.sha256(request_data.query.encode()).hexdigest() != digest.lower():
                raise PersistedQueryMismatch("the query's sha256 is not extensions.persistedQuery.sha256Hash")
            self.persisted.put(digest.lower(), request_data.query)
            return request_data, True
        query = self.persisted.get(digest.lower())
        if query is None:
            raise LookupError(digest)
        return replace(request_data, query=query), True

    async def _etag(self, context: PortalContext, request_data: GraphQLRequestData) -> str | None:
        assert request_data.query is not None
        text = normalized(request_data.query)
        if text is None:
            return None
        try:
            release = (await context.store(partial(context.query_service.resolve_release, None))).id
        except UnknownRelease:
            release = "none"
        return etag_of(release, text, request_data, context.principal.tier.value, context.lang)


def graphql_router(settings: Settings) -> PortalGraphQLRouter:
    return PortalGraphQLRouter(settings)

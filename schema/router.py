"""`/graphql`: Strawberry's FastAPI router with persisted queries, ETags and 304s, cached answers (of
GETs, persisted queries and POSTed texts alike) and a per-request timeout."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from functools import lru_cache

import orjson
from cross_web import AsyncHTTPRequestAdapter
from fastapi import Request, Response
from graphql import GraphQLError, parse, print_ast
from graphql.error import GraphQLSyntaxError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult

from app.cache import VARY as CACHE_VARY
from app.cache import CachedResponse, ResponseStore
from app.settings import Settings
from auth.principal import Tier
from schema.build import build_schema
from schema.context import PortalContext, graphql_context
from schema.errors import PERSISTED_QUERY_NOT_FOUND, TIMEOUT, PersistedQueryMismatch, error, portal_error

VARY = CACHE_VARY.decode()
APQ_PREFIX = "graphql-apq:"
MAX_AGE_S = 60


@lru_cache(maxsize=1024)
def normalized(query: str) -> str | None:
    """The query's canonical text (whitespace, comments and commas do not change an ETag)."""
    try:
        return print_ast(parse(query))
    except GraphQLSyntaxError:
        return None


def answer_key(epoch: str, query: str, request_data: GraphQLRequestData, tier: str, lang: str) -> str:
    """Key and ETag of an answer: (publication epoch, normalized query, tier), as REST's response cache
    keys its answers, plus the variables and the label language."""
    key = orjson.dumps(
        ["graphql", epoch, query, request_data.variables, request_data.operation_name, tier, lang],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(key).hexdigest()[:32]


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in {t.strip().removeprefix("W/") for t in header.split(",")}


def _no_cache(header: str | None) -> bool:
    """Whether the request's Cache-Control asks for an answer worked out afresh (RFC 9111, 5.2.1.4)."""
    return header is not None and "no-cache" in {d.strip().lower() for d in header.split(",")}


class PortalGraphQLRouter(GraphQLRouter[PortalContext, None]):
    """Answers and persisted query texts live in the app's ResponseStore (in process, then Redis when
    configured), so every process behind the load balancer shares them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(build_schema(settings), context_getter=graphql_context, graphql_ide="graphiql")
        self.settings = settings

    async def get_sub_response(self, request: Request) -> Response:
        # Strawberry keeps the sub-response on the router, which concurrent requests share; the context
        # dependency keeps each request's own on its state instead.
        response: Response = request.state.graphql_response
        return response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET with only a persisted query's hash is a query, not a browser asking for GraphiQL.
        return super().should_render_graphql_ide(request) and request.query_params.get("extensions") is None

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        if sub_response.status_code == 304:
            return Response(status_code=304, headers=dict(sub_response.headers))
        if isinstance(response_data, dict) and response_data.get("errors"):
            # Errors are not kept anywhere (a persisted query not found yet, a timeout): no ETag, and
            # no-store, which the gateway's response cache honours too.
            if "ETag" in sub_response.headers:
                del sub_response.headers["ETag"]
            sub_response.headers["Cache-Control"] = "no-store"
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
        store: ResponseStore = request.app.state.response_store
        try:
            request_data, persisted = await self._persisted(store, request_data)
        except LookupError:
            return ExecutionResult(
                data=None, errors=[error("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)]
            )
        except PersistedQueryMismatch as exc:
            return ExecutionResult(
                data=None, errors=[portal_error(GraphQLError(exc.detail, original_error=exc))]
            )
        key = None
        # Every internal access is audited, so internal answers never come from a cache (as in REST).
        if request_data.query and context.principal.tier is not Tier.INTERNAL:
            key = self._key(context, request_data)
        if key is not None:
            # GETs and persisted queries are HTTP-cacheable; a POSTed text is answered from the store
            # alone (apps' GraphQL clients POST by default, and a screen's query is the same for
            # every user of the app).
            if request_adapter.method == "GET" or persisted:
                etag = f'"{key}"'
                sub_response.headers["ETag"] = etag
                sub_response.headers["Cache-Control"] = (
                    f"{'public' if context.principal.tier is Tier.PUBLIC else 'private'}, max-age={MAX_AGE_S}"
                )
                sub_response.headers["Vary"] = VARY
                if _matches(request.headers.get("if-none-match"), etag):
                    sub_response.status_code = 304
                    return ExecutionResult(data=None, errors=None)
            cached = None if _no_cache(request.headers.get("cache-control")) else await store.get(key)
            if cached is not None:
                return ExecutionResult(data=orjson.loads(cached.body), errors=None)
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
        if key is not None and not result.errors:
            await store.put(key, CachedResponse(200, (), orjson.dumps(result.data)))
        return result

    async def _persisted(
        self, store: ResponseStore, request_data: GraphQLRequestData
    ) -> tuple[GraphQLRequestData, bool]:
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
            await store.put(self._apq_key(digest), CachedResponse(200, (), request_data.query.encode()))
            return request_data, True
        stored = await store.get(self._apq_key(digest))
        if stored is None:
            raise LookupError(digest)
        return replace(request_data, query=stored.body.decode()), True

    def _apq_key(self, digest: str) -> str:
        # Unlike answers, stored texts outlive releases: the deployment's prefix keeps them apart.
        return f"{self.settings.redis_key_prefix}:{APQ_PREFIX}{digest.lower()}"

    def _key(self, context: PortalContext, request_data: GraphQLRequestData) -> str | None:
        assert request_data.query is not None
        text = normalized(request_data.query)
        if text is None:
            return None  # not a document: execution reports the syntax error
        epoch = context.reference.epoch  # the snapshot the answer is computed against
        return answer_key(
            f"{self.settings.redis_key_prefix}:{epoch}",
            text,
            request_data,
            context.principal.tier.value,
            context.lang,
        )


def graphql_router(settings: Settings) -> PortalGraphQLRouter:
    return PortalGraphQLRouter(settings)

"""The response cache: its key, and cached answers as callers get them through the gateway (their own
CORS, limit, tier and deprecation headers), GraphQL GETs included."""

from __future__ import annotations

import gc
import hashlib
from datetime import date

import orjson
import pytest
from fastapi import FastAPI

from app.cache import CachedResponse, ResponseStore, response_key
from app.deprecation import Deprecation
from app.main import create_app
from auth.principal import Tier
from tests.auth import support
from tests.auth.support import unique
from tests.conftest import serve, settings_for


def test_answer_key_ignores_parameter_order_and_spelling_but_not_headers() -> None:
    def key(query: bytes, tier: Tier = Tier.PUBLIC, accept: bytes = b"", language: bytes = b"") -> str:
        return response_key("1:x", "/v1/data/POP", query, tier, accept, language)

    first = key(b"area=24&period=2024")
    assert key(b"period=2024&area=24") == first
    assert key(b"period=2024&area=%32%34") == first
    assert key(b"area=24&period=2023") != first
    assert response_key("2:x", "/v1/data/POP", b"area=24&period=2024", Tier.PUBLIC, b"", b"") != first
    assert key(b"area=24&period=2024", Tier.DEPARTMENT) != first
    assert key(b"area=24&period=2024", accept=b"text/csv") != first
    assert key(b"area=24&period=2024", language=b"en") != first


# Through the whole app: the gateway answers from the cache with the caller's own headers.

APP_A, APP_B = "https://app-a.example", "https://app-b.example"


def _app(database: str, **overrides: object) -> FastAPI:
    settings = settings_for(
        database, cors_origins=[APP_A, APP_B], redis_key_prefix=unique("cache-"), **overrides
    )
    return create_app(settings)


async def test_held_answers_are_not_tracked_by_the_garbage_collector() -> None:
    """Tens of thousands of held answers would otherwise lengthen every full collection (a pause for
    every request in flight); held as plain tuples of bytes, the collector stops following them."""
    store = ResponseStore(1 << 20, None, 60)
    for i in range(100):
        await store.put(f"k{i}", CachedResponse(200, [(b"etag", b'"%d"' % i)], b"{}"))
    for _ in range(3):  # a tuple is let go once what it holds is: the headers, then the answer
        gc.collect()
    assert not any(gc.is_tracked(held) for held in store._local.values())
    found = store.local("k7")
    assert found == CachedResponse(200, ((b"etag", b'"7"'),), b"{}")
    assert store.local("missing") is None


async def test_a_cached_answer_carries_the_cors_headers_of_each_origin(reference_database: str) -> None:
    app = _app(reference_database)
    async with serve(app) as http:
        first = await http.get("/v1/geographies", headers={"Origin": APP_A})
        other = await http.get("/v1/geographies", headers={"Origin": APP_B})
        stranger = await http.get("/v1/geographies", headers={"Origin": "https://elsewhere.example"})
        plain = await http.get("/v1/geographies")
    assert app.state.response_store.hits == 3
    assert first.headers["access-control-allow-origin"] == APP_A
    assert other.headers["access-control-allow-origin"] == APP_B
    assert "access-control-allow-origin" not in stranger.headers
    assert "access-control-allow-origin" not in plain.headers
    for response in (first, other, stranger, plain):
        assert response.content == first.content
        assert "origin" in response.headers["vary"].lower()
    assert other.headers.get_list("access-control-allow-origin") == [APP_B]  # not A's as well
    assert "ratelimit-remaining" in other.headers["access-control-expose-headers"].lower()


async def test_refusals_of_the_gateway_carry_cors_headers(reference_database: str) -> None:
    app = _app(reference_database, rate_limit_public="1/minute", redis_url=None)
    async with serve(app) as http:
        assert (await http.get("/v1/geographies", headers={"Origin": APP_A})).status_code == 200
        limited = await http.get("/v1/geographies", headers={"Origin": APP_B})
        invalid = await http.get(
            "/v1/geographies", headers={"Origin": APP_A, "X-API-Key": "pdp_key_nonsense"}
        )
    assert limited.status_code == 429
    assert limited.headers["access-control-allow-origin"] == APP_B
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    assert invalid.status_code == 401
    assert invalid.headers["access-control-allow-origin"] == APP_A


async def test_a_cache_hit_still_counts_against_the_limit(reference_database: str) -> None:
    app = _app(reference_database, rate_limit_public="2/minute", redis_url=None)
    async with serve(app) as http:
        statuses = [(await http.get("/v1/indicators")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert app.state.response_store.hits == 1


async def test_a_credential_never_gets_the_public_cached_answer(
    demo_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(demo_database)
    system = await support.client(settings, capsys, await support.department(settings, capsys))
    api_key = (await support.cli(["keys", "create", "--client", system["client_id"]], settings, capsys))[
        "api_key"
    ]
    app = _app(demo_database)
    url = "/v1/data/POP?area=24&period=2024"
    async with serve(app) as http:
        public = [await http.get(url) for _ in range(2)]
        department = await http.get(url, headers={"X-API-Key": api_key})
        again = await http.get(url, headers={"X-API-Key": api_key})
    assert app.state.response_store.hits == 2  # the second of each tier
    assert public[1].headers["x-portal-tier"] == "public"
    assert department.headers["x-portal-tier"] == again.headers["x-portal-tier"] == "department"
    assert department.json()["tier"] == "department"
    assert department.headers["cache-control"] == "private, max-age=60"
    assert department.headers["etag"] != public[0].headers["etag"]


async def test_cached_answers_of_a_deprecated_route_announce_it(reference_database: str) -> None:
    moving = Deprecation(
        path_prefix="/v1/geographies", deprecated_on=date(2027, 1, 1), sunset_on=date(2027, 7, 1)
    )
    app = _app(reference_database, deprecations=[moving])
    async with serve(app) as http:
        first, again = [await http.get("/v1/geographies") for _ in range(2)]
        refused = await http.get("/v1/geographies?lang=%00")
    assert app.state.response_store.hits == 1
    assert first.headers["sunset"] == again.headers["sunset"] == "Thu, 01 Jul 2027 00:00:00 GMT"
    assert again.headers.get_list("sunset") == ["Thu, 01 Jul 2027 00:00:00 GMT"]
    assert refused.status_code == 400
    assert refused.headers["sunset"] == "Thu, 01 Jul 2027 00:00:00 GMT"


async def test_graphql_get_answers_come_from_the_gateway_and_errors_are_not_kept(demo_database: str) -> None:
    app = _app(demo_database)
    query = '{ observations(indicator: "POP", geography: "vn-2025-01", areas: ["24"], periods: ["2024"]) { items { value } } }'
    digest = hashlib.sha256(query.encode()).hexdigest()
    by_hash = {"extensions": orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}).decode()}
    async with serve(app) as http:
        first, second = [await http.get("/graphql", params={"query": query}) for _ in range(2)]
        assert app.state.response_store.hits == 1
        # The app's own ETag (of the normalised document) revalidates at the gateway too.
        revalidated = await http.get(
            "/graphql", params={"query": query}, headers={"If-None-Match": first.headers["etag"]}
        )
        assert app.state.response_store.hits == 1
        unknown = await http.get("/graphql", params=by_hash)
        await http.get("/graphql", params={"query": query, **by_hash})  # registers the text
        known = await http.get("/graphql", params=by_hash)
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["x-portal-tier"] == "public"
    assert revalidated.status_code == 304
    assert revalidated.headers["etag"] == first.headers["etag"]
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert unknown.headers["cache-control"] == "no-store"
    assert "etag" not in unknown.headers
    # Not kept: once the text is registered, the same URL answers the data.
    assert known.json()["data"] == first.json()["data"]

"""Versioning promises: deprecations announced in headers, CORS for browser apps, query time limits."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from app.deprecation import Deprecation
from app.main import create_app
from tests.conftest import serve, settings_for


async def test_a_deprecated_route_announces_its_sunset_and_successor(reference_database: str) -> None:
    moving = Deprecation(
        path_prefix="/v1/geographies",
        deprecated_on=date(2027, 1, 1),
        sunset_on=date(2027, 7, 1),
        successor="/v2/geographies",
        documentation="https://portal.example/docs/v2",
    )
    async with serve(create_app(settings_for(reference_database, deprecations=[moving]))) as http:
        response = await http.get("/v1/geographies")
        other = await http.get("/v1/indicators")
    assert response.status_code == 200
    assert response.headers["deprecation"] == "@1798761600"  # RFC 9745: a Unix time
    assert response.headers["sunset"] == "Thu, 01 Jul 2027 00:00:00 GMT"  # RFC 8594: an HTTP date
    assert '</v2/geographies>; rel="successor-version"' in response.headers["link"]
    assert "deprecation" not in other.headers


def test_deprecations_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv(
        "PORTAL_DEPRECATIONS",
        '[{"path_prefix": "/v1/x", "deprecated_on": "2027-01-01", "sunset_on": "2027-06-30"}]',
    )
    assert Settings().deprecations[0].sunset_on == date(2027, 6, 30)


async def test_browsers_may_call_the_api_and_read_its_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/geographies", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = response.headers["access-control-expose-headers"].lower()
    for header in ("etag", "ratelimit-remaining", "retry-after", "x-portal-tier", "sunset"):
        assert header in exposed
    preflight = await client.options(
        "/v1/data/POP",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert preflight.status_code == 200
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()


async def test_a_query_over_the_time_limit_is_a_503_problem(demo_database: str) -> None:
    app = create_app(settings_for(demo_database, query_timeout_seconds=0.000001))
    async with serve(app) as http:
        response = await http.get(
            "/v1/data/POP", params={"parent": "24", "level": "commune", "period": "2024"}
        )
    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "query-timeout"
    assert "bulk" in problem["detail"]

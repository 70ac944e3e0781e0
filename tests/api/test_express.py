"""The express lane (app/express.py): a GET of /v1/data answered past FastAPI's router is the same
answer FastAPI's own route gives, errors and crashes included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.gateway import Gateway
from app.main import PortalApp, create_app
from app.services.data import DataService
from tests.conftest import settings_for

URLS = [
    "/v1/data/POP?area=24,38&period=2024,2024-Q2&by=sex",
    "/v1/data/CBR?parent=24&level=district&period=2024&numerators=true&limit=3",
    "/v1/data/POP?area=24&period=2024&format=csv&bom=true&lang=en",
    "/v1/data/POP?area=24&period=2024&by=age5&format=jsonstat",
    "/v1/data/POP?area=24&period=2024&format=sdmx-csv",
    "/v1/data/NOPE?area=24&period=2024",  # unknown indicator
    "/v1/data/POP?area=99999&period=2024",  # unknown area
    "/v1/data/POP?area=24&period=1990",  # outside the release
    "/v1/data/POP?area=24&period=2024&by=colour",  # unknown breakdown
    "/v1/data/POP?area=24&period=2024&limit=0",  # invalid parameter
    "/v1/data/POP?area=24",  # period missing
    "/v1/data/POP?level=commune&period=2020-01..2025-12&by=sex",  # over the cell cap
]
COMPARED_HEADERS = ("content-type", "etag", "cache-control", "x-portal-tier", "vary")


@asynccontextmanager
async def both(database: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI]]:
    """Two apps on one database, without response caches: one with the express lane, one without."""
    settings = settings_for(database, cache_max_bytes=0, redis_url=None)
    express, plain = create_app(settings), create_app(settings)
    assert isinstance(plain, PortalApp)
    assert plain.front is not None
    gateway: Any = plain.front  # partial(Gateway, ...): the same, without the lane
    plain.front = partial(gateway, express=None)
    async with express.router.lifespan_context(express), plain.router.lifespan_context(plain):
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://portal.test",
            )
            for app in (express, plain)
        ]
        async with clients[0], clients[1]:
            yield clients[0], clients[1], express


async def test_express_answers_equal_fastapis(demo_database: str) -> None:
    async with both(demo_database) as (express, plain, app):
        statuses = []
        for url in URLS:
            fast, slow = await express.get(url), await plain.get(url)
            statuses.append(fast.status_code)
            assert fast.status_code == slow.status_code, url
            assert fast.content == slow.content, url
            for name in COMPARED_HEADERS:
                assert fast.headers.get(name) == slow.headers.get(name), (url, name)
        assert statuses == [200] * 5 + [404, 404, 422, 400, 400, 400, 422]
        await express.get("/v1/indicators")
        gateway = app.middleware_stack  # built at the first request
        assert isinstance(gateway, Gateway)
        assert gateway.express is not None
        assert gateway._paths["/v1/data/POP"].express
        assert not gateway._paths["/v1/indicators"].express


async def test_a_crash_in_the_express_lane_is_the_apps_500_problem(
    demo_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(DataService, "observations", crash)
    async with both(demo_database) as (express, plain, _):
        fast = await express.get("/v1/data/POP?area=24&period=2024")
        slow = await plain.get("/v1/data/POP?area=24&period=2024")
    assert fast.status_code == slow.status_code == 500
    assert fast.headers["content-type"] == "application/problem+json"
    assert fast.json() == slow.json()
    assert "boom" not in fast.text

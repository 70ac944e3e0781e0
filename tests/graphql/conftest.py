"""Fixtures for the GraphQL tests: the app over a database with a small published demo release."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.cli import run
from app.main import create_app
from tests.backends import fresh_database
from tests.conftest import prepare_reference_database, serve, settings_for

DEMO_SCALE = "0.005"


@pytest.fixture(scope="session")
async def demo_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Reference data plus the synthetic demo register published as the current release."""
    async with fresh_database(tmp_path_factory.mktemp("graphql")) as url:
        await prepare_reference_database(url)
        assert await run(["demo", "--scale", DEMO_SCALE, "--seed", "11"], settings_for(url)) == 0
        yield url


@pytest.fixture(scope="session")
async def demo_client(demo_database: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(demo_database))) as http:
        yield http


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a query; GraphQL answers 200 with `errors` for refused queries, never a 5xx."""
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]

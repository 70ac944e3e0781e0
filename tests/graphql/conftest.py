"""Helpers for the GraphQL tests (the app and its databases come from tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import settings_for


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


@pytest.fixture
async def department_key(demo_database: str, capsys: pytest.CaptureFixture[str]) -> str:
    """An API key of a department's client, made with the admin CLI."""
    from tests.auth.support import cli, client, department

    settings = settings_for(demo_database)
    system = await client(settings, capsys, await department(settings, capsys))
    key = await cli(["keys", "create", "--client", system["client_id"]], settings, capsys)
    api_key: str = key["api_key"]
    return api_key

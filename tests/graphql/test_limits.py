"""Guards: depth, aliases, tokens, cost, timeout, malformed queries and masked failures answer with codes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.main import create_app
from app.services.indicators import IndicatorService
from tests.conftest import serve, settings_for
from tests.graphql.conftest import codes, gql


async def test_too_deep(client: httpx.AsyncClient) -> None:
    nested = "children { " * 8 + "code" + " }" * 8
    body = await gql(client, f'{{ area(geography: "vn-2025-01", code: "24") {{ {nested} }} }}')
    assert body.get("data") is None
    assert codes(body) == ["query-too-deep"]


async def test_too_many_aliases(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"a{i}: geographies {{ id }}" for i in range(31))
    body = await gql(client, f"{{ {fields} }}")
    assert codes(body) == ["too-many-aliases"]
    assert "31 aliases" in body["errors"][0]["message"]


async def test_too_many_tokens(client: httpx.AsyncClient) -> None:
    fields = " ".join("geographies { id name levels }" for _ in range(500))
    assert codes(await gql(client, f"{{ {fields} }}")) == ["too-many-tokens"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ geographies { id ", "malformed-query"),
        ("query { nope }", "invalid-query"),
        ('{ area(geography: 1, code: "24") { code } }', "invalid-query"),
        ("", "malformed-query"),
    ],
)
async def test_malformed_and_invalid(client: httpx.AsyncClient, query: str, code: str) -> None:
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code < 500
    if response.status_code == 200:
        assert codes(response.json()) == [code]


async def test_non_json_bodies_are_client_errors(client: httpx.AsyncClient) -> None:
    assert (
        await client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    ).status_code == 400
    assert (
        await client.post("/graphql", content=b"query", headers={"content-type": "text/plain"})
    ).status_code == 400
    assert (
        await client.get("/graphql", params={"query": "{ geographies { id } }", "variables": "[1"})
    ).status_code == 400


async def test_too_costly_is_refused_before_reading(client: httpx.AsyncClient) -> None:
    communes = [f"{i:05d}" for i in range(1, 501)]
    body = await gql(
        client,
        """query($areas: [String!]!) { observations(indicator: "POP", geography: "vn-2025-01",
             areas: $areas, periods: ["2021-01..2025-06"], by: [SEX]) { totalCount } }""",
        {"areas": communes},
    )
    assert body["data"] is None
    assert codes(body) == ["query-too-costly"]
    extensions = body["errors"][0]["extensions"]
    assert extensions["cells"] == 500 * 54 * 2
    assert extensions["limit"] == 10_000


async def test_cost_sums_over_aliases(client: httpx.AsyncClient) -> None:
    field = 'observations(indicator: "POP", geography: "vn-2025-01", areas: ["24"], periods: ["2021-01..2025-06"], by: [SEX, AGE5]) { totalCount }'
    body = await gql(client, "{ " + " ".join(f"o{i}: {field}" for i in range(5)) + " }")
    # 54 months x 42 cells = 2268 each: five of them pass REST's per-request cap of 10,000 together.
    assert codes(body) == ["query-too-costly"]
    assert body["errors"][0]["extensions"]["cells"] == 5 * 54 * 42


async def test_introspection_stays_on(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ __schema { queryType { name } types { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_failures_are_masked(
    reference_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: IndicatorService, q: str | None, topic: str | None) -> list[object]:
        raise RuntimeError("connection string postgresql://secret@db")

    monkeypatch.setattr(IndicatorService, "list_indicators", broken)
    async with serve(create_app(settings_for(reference_database))) as http:
        response = await http.post("/graphql", json={"query": "{ indicators { code } }"})
    assert response.status_code == 200
    body = response.json()
    assert codes(body) == ["internal-error"]
    assert "secret" not in response.text
    assert body["data"] is None
    assert "connection string" in caplog.text  # logged for operators


async def test_timeout(reference_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(self: IndicatorService, q: str | None, topic: str | None) -> list[object]:
        await asyncio.sleep(5)
        return []

    monkeypatch.setattr(IndicatorService, "list_indicators", slow)
    async with serve(create_app(settings_for(reference_database, graphql_timeout_s=0.05))) as http:
        body = await gql(http, "{ indicators { code } }")
    assert body["data"] is None
    assert codes(body) == ["timeout"]

"""Observations over GraphQL on a published demo release: the mobile screen, privacy rules, parity with
the query service and REST /v1/data, batched store calls, ETags and persisted queries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.db import create_engine, session_factory
from app.formats.observations import rounded
from app.main import create_app
from app.query.periods import parse_periods
from app.query.service import ObservationQuery, QueryService, parse_age_ranges
from app.reference import read_snapshot
from auth.principal import Tier
from tests.conftest import serve, settings_for
from tests.graphql.conftest import codes, gql

THANH_HOA = "38"  # a province of vn-2025-07 wholly inside the demo register

MOBILE_SCREEN = """
query Screen($province: String!, $year: String!) {
  area(geography: "vn-2025-07", code: $province) {
    name
    pyramid: observations(indicator: "POP", periods: [$year], by: [SEX, AGE5]) {
      release tier items { sex age value status }
    }
    children {
      code name
      population: observations(indicator: "POP", periods: [$year]) { items { value status perturbed } }
      cbr: observations(indicator: "CBR", periods: [$year]) { items { value status numerator denominator } }
    }
  }
}
"""


async def released(
    database: str, indicator: str, areas: tuple[str, ...], period: str, tier: Tier, **extra: str
) -> list[dict[str, Any]]:
    """The query service's own answer, as the GraphQL items should carry it."""
    engine = create_engine(settings_for(database))
    try:
        async with session_factory(engine)() as session:
            query = ObservationQuery(
                indicator,
                extra.get("geography", "vn-2025-07"),
                areas,
                tuple(parse_periods(period)),
                sex=extra.get("sex"),
                age=parse_age_ranges(extra.get("age", "")),
                by=tuple(b for b in extra.get("by", "").split(",") if b),
            )
            result = await QueryService(session, 10_000, await read_snapshot(session)).observations(
                query, tier
            )
    finally:
        await engine.dispose()
    return [
        {
            "area": o.area,
            "period": o.period,
            "sex": o.breakdown.get("sex"),
            "age": o.breakdown.get("age"),
            "value": rounded(o.value, result.indicator.decimals),
            "status": o.status.value,
            "confStatus": o.conf_status.value,
            "perturbed": o.perturbed,
            "numerator": o.numerator,
            "denominator": o.denominator,
        }
        for o in result.observations
    ]


@contextmanager
def counting_statements(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_mobile_screen_in_one_request(demo_client: httpx.AsyncClient, demo_database: str) -> None:
    body = await gql(demo_client, MOBILE_SCREEN, {"province": THANH_HOA, "year": "2024"})
    assert "errors" not in body, body["errors"]
    area = body["data"]["area"]
    assert area["name"] == "Tỉnh Thanh Hóa"
    pyramid = area["pyramid"]
    assert pyramid["tier"] == "PUBLIC"
    assert len(pyramid["items"]) == 42
    expected = await released(demo_database, "POP", (THANH_HOA,), "2024", Tier.PUBLIC, by="sex,age5")
    assert [(i["sex"], i["age"], i["value"], i["status"]) for i in pyramid["items"]] == [
        (e["sex"], e["age"], e["value"], e["status"]) for e in expected
    ]
    communes = tuple(c["code"] for c in area["children"])
    assert len(communes) > 100
    population = await released(demo_database, "POP", communes, "2024", Tier.PUBLIC)
    cbr = await released(demo_database, "CBR", communes, "2024", Tier.PUBLIC)
    for child, pop, rate in zip(area["children"], population, cbr, strict=True):
        assert child["population"]["items"] == [
            {"value": pop["value"], "status": pop["status"], "perturbed": pop["perturbed"]}
        ]
        assert child["cbr"]["items"] == [
            {
                "value": rate["value"],
                "status": rate["status"],
                "numerator": rate["numerator"],
                "denominator": rate["denominator"],
            }
        ]
    # Numbers equal REST's too.
    rest = (
        await demo_client.get(
            "/v1/data/CBR",
            params={
                "geography": "vn-2025-07",
                "parent": THANH_HOA,
                "level": "commune",
                "period": "2024",
                "limit": 1000,
            },
        )
    ).json()
    assert [(i["area"], i["value"], i["status"]) for i in rest["items"]] == [
        (c["code"], c["cbr"]["items"][0]["value"], c["cbr"]["items"][0]["status"]) for c in area["children"]
    ]


async def test_children_cost_a_bounded_number_of_statements(demo_database: str) -> None:
    # The publication epoch is checked at most hourly here, so only the queries' own statements count.
    app = create_app(settings_for(demo_database, cache_epoch_seconds=3600))
    async with serve(app) as http:
        await gql(http, "{ geographies { id } }")  # warm the app's own caches
        with counting_statements(app) as few:
            body = await gql(
                http, '{ area(geography: "vn-2025-07", code: "38") { children { code parent { code } } } }'
            )
        with counting_statements(app) as many:
            screen = await gql(http, MOBILE_SCREEN, {"province": THANH_HOA, "year": "2024"})
    assert len(body["data"]["area"]["children"]) > 100
    assert "errors" not in screen
    # Area, its children, their parents: one statement each, not one per child.
    assert len(few) <= 3, few
    # 160+ communes x two indicators, a pyramid and names: a handful of statements, not hundreds.
    assert len(many) <= 30, len(many)


async def test_public_finer_than_published(demo_client: httpx.AsyncClient) -> None:
    body = await gql(
        demo_client,
        '{ observations(indicator: "POP", geography: "vn-2025-01", areas: ["07201"], periods: ["2024"], age: ["17"]) { totalCount } }',
    )
    assert codes(body) == ["finer-than-published"]
    error = body["errors"][0]
    assert error["extensions"]["status"] == 422
    assert error["extensions"]["allowed"]
    assert "band_edges" in error["extensions"]["allowed"][0]
    rest = await demo_client.get("/v1/data/POP", params={"area": "07201", "period": "2024", "age": "17"})
    assert rest.status_code == 422
    assert rest.json()["code"] == "finer-than-published"
    assert rest.json()["allowed"] == error["extensions"]["allowed"]


PARITY = [
    ("POP", "vn-2025-01", "24,38", "2024", {"by": "sex"}),
    ("POP", "vn-2025-01", "38", "2023", {"by": "sex,age5"}),
    ("CBR", "vn-2025-01", "24,213,380", "2022,2023,2024", {}),
    ("CDR", "vn-2025-07", "38", "2024", {}),
    ("BIRTHS", "vn-2025-01", "24", "2024-Q2", {}),
    ("TFR", "vn-2025-01", "24", "2023", {}),
    ("SR", "vn-2025-01", "07201,14755", "2024", {}),
    ("CPR", "vn-2025-01", "07201", "2024", {}),
    ("AGE_65P", "vn-2025-07", "38", "2024", {}),
]


@pytest.mark.parametrize(("indicator", "geography", "areas", "period", "extra"), PARITY)
async def test_parity_with_the_query_service_and_rest(
    demo_client: httpx.AsyncClient,
    demo_database: str,
    indicator: str,
    geography: str,
    areas: str,
    period: str,
    extra: dict[str, str],
) -> None:
    by = [b.upper() for b in extra.get("by", "").split(",") if b]
    body = await gql(
        demo_client,
        """query($i: String!, $g: String!, $a: [String!], $p: [String!]!, $by: [Breakdown!]) {
             observations(indicator: $i, geography: $g, areas: $a, periods: $p, by: $by) {
               tier release method ptable totalCount
               items { area period sex age value status confStatus perturbed numerator denominator } } }""",
        {"i": indicator, "g": geography, "a": areas.split(","), "p": period.split(","), "by": by},
    )
    assert "errors" not in body, body["errors"]
    result = body["data"]["observations"]
    expected = await released(
        demo_database, indicator, tuple(areas.split(",")), period, Tier.PUBLIC, geography=geography, **extra
    )
    assert result["items"] == expected
    assert result["totalCount"] == len(expected)
    params = {"geography": geography, "area": areas, "period": period, "numerators": "true", **extra}
    rest = (await demo_client.get(f"/v1/data/{indicator}", params=params)).json()
    assert result["release"] == rest["release"]["id"]
    assert result["tier"].lower() == rest["tier"]
    assert (result["method"], result["ptable"]) == (
        rest["disclosure"]["method"],
        rest["disclosure"]["ptable"],
    )
    assert [
        (
            i["area"],
            i["period"],
            i["sex"],
            i["age"],
            i["value"],
            i["status"],
            i["confStatus"],
            i["perturbed"],
            i["numerator"],
            i["denominator"],
        )
        for i in result["items"]
    ] == [
        (
            r["area"],
            r["period"],
            r.get("sex"),
            r.get("age"),
            r["value"],
            r["status"],
            r["conf_status"],
            r["perturbed"],
            r["numerator"],
            r["denominator"],
        )
        for r in rest["items"]
    ]


async def test_observations_page(demo_client: httpx.AsyncClient) -> None:
    query = """query($after: String) { observations(indicator: "POP", geography: "vn-2025-01", areas: ["24"],
                 periods: ["2024"], by: [SEX, AGE5], first: 30, after: $after) {
                 totalCount pageInfo { hasNextPage endCursor } items { sex age } } }"""
    first = (await gql(demo_client, query))["data"]["observations"]
    assert first["totalCount"] == 42
    assert len(first["items"]) == 30
    assert first["pageInfo"]["hasNextPage"]
    rest = (await gql(demo_client, query, {"after": first["pageInfo"]["endCursor"]}))["data"]["observations"]
    assert len(rest["items"]) == 12
    assert not rest["pageInfo"]["hasNextPage"]


async def test_get_queries_carry_etags_and_answer_304(demo_client: httpx.AsyncClient) -> None:
    query = '{ observations(indicator: "POP", geography: "vn-2025-01", areas: ["24"], periods: ["2024"]) { items { value } } }'
    first = await demo_client.get("/graphql", params={"query": query})
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=60"
    # The same query spelled differently shares the ETag.
    spaced = await demo_client.get("/graphql", params={"query": query.replace(" ", "  ").replace("{", "{\n")})
    assert spaced.headers["etag"] == etag
    assert spaced.json() == first.json()
    again = await demo_client.get("/graphql", params={"query": query}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other_lang = await demo_client.get("/graphql", params={"query": query, "lang": "en"})
    assert other_lang.headers["etag"] != etag
    # POSTed queries carry no ETag (their answers are stored, see below); refused ones are not cached.
    assert "etag" not in (await demo_client.post("/graphql", json={"query": query})).headers
    failing = await demo_client.get("/graphql", params={"query": '{ indicator(code: "NOPE") { code } }'})
    assert "etag" not in failing.headers


async def test_posted_queries_are_answered_from_the_store(
    demo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    executed: list[ObservationQuery] = []
    observations = QueryService.observations

    async def counted(self: QueryService, query: ObservationQuery, tier: Tier) -> Any:
        executed.append(query)
        return await observations(self, query, tier)

    monkeypatch.setattr(QueryService, "observations", counted)
    query = '{ observations(indicator: "CBR", geography: "vn-2025-07", areas: ["38"], periods: ["2023-Q3"]) { items { value status } } }'
    first = await demo_client.post("/graphql", json={"query": query})
    again = await demo_client.post("/graphql", json={"query": query.replace(" ", "\n")})
    assert again.json() == first.json()
    assert first.json()["data"]["observations"]["items"][0]["status"] in ("A", "U")
    assert len(executed) == 1  # the second, spelled otherwise, came from the store
    assert "etag" not in again.headers  # a POST is not HTTP-cacheable
    # Cache-Control: no-cache asks for the answer worked out afresh, which is the same.
    fresh = await demo_client.post("/graphql", json={"query": query}, headers={"Cache-Control": "no-cache"})
    assert fresh.json() == first.json()
    assert len(executed) == 2
    # A GET of the same text shares the stored answer.
    assert (await demo_client.get("/graphql", params={"query": query})).json() == first.json()
    assert len(executed) == 2


async def test_automatic_persisted_queries(demo_client: httpx.AsyncClient) -> None:
    query = '{ area(geography: "vn-2025-07", code: "38") { name children { code } } }'
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}).decode()
    unknown = await demo_client.get("/graphql", params={"extensions": extensions})
    assert codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = await demo_client.get("/graphql", params={"query": query, "extensions": extensions})
    assert registered.json()["data"]["area"]["name"] == "Tỉnh Thanh Hóa"
    by_hash = await demo_client.get("/graphql", params={"extensions": extensions})
    assert by_hash.json() == registered.json()
    assert by_hash.headers["etag"] == registered.headers["etag"]
    posted = await demo_client.post(
        "/graphql", json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    )
    assert posted.json() == registered.json()
    assert posted.headers["etag"] == registered.headers["etag"]
    wrong = await demo_client.get(
        "/graphql", params={"query": "{ releases { id } }", "extensions": extensions}
    )
    assert codes(wrong.json()) == ["persisted-query-hash-mismatch"]


async def test_the_tier_comes_from_the_credential_not_the_query(demo_client: httpx.AsyncClient) -> None:
    query = '{ observations(indicator: "POP", geography: "vn-2025-01", areas: ["07201"], periods: ["2024"]) { tier items { confStatus } } }'
    public = (await gql(demo_client, query))["data"]["observations"]
    assert public["tier"] == "PUBLIC"
    assert public["items"][0]["confStatus"] == "F"
    forged = await demo_client.post(
        "/graphql", json={"query": query}, headers={"Authorization": "Bearer forged"}
    )
    assert forged.status_code == 401  # a bad credential is refused, never downgraded or upgraded
    bad_arg = await gql(demo_client, query.replace("periods:", "tier: INTERNAL, periods:"))
    assert codes(bad_arg) == ["invalid-query"]


async def test_a_department_key_reaches_single_years(
    demo_client: httpx.AsyncClient, demo_database: str, department_key: str
) -> None:
    query = '{ observations(indicator: "POP", geography: "vn-2025-01", areas: ["07201"], periods: ["2024"], age: ["17"]) { tier items { value confStatus } } }'
    body = await gql(demo_client, query, headers={"X-API-Key": department_key})
    assert "errors" not in body, body
    result = body["data"]["observations"]
    assert result["tier"] == "DEPARTMENT"
    expected = await released(
        demo_database, "POP", ("07201",), "2024", Tier.DEPARTMENT, geography="vn-2025-01", age="17"
    )
    assert result["items"] == [{"value": expected[0]["value"], "confStatus": "N"}]

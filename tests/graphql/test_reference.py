"""Reference data over GraphQL: geographies, areas with parents, children and crosswalk links, indicators."""

from __future__ import annotations

import httpx

from tests.graphql.conftest import codes, gql


async def test_geographies_and_an_area_with_its_family(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        """{ geographies { id levels areaCounts { level count } }
             area(geography: "vn-2025-01", code: "24") {
               name level parent { code }
               children { code level parent { code } }
               successors { geography code kind communes area { name } }
             } }""",
    )
    assert "errors" not in body, body
    counts = {g["id"]: {c["level"]: c["count"] for c in g["areaCounts"]} for g in body["data"]["geographies"]}
    assert counts["vn-2025-01"] == {"province": 63, "district": 696, "commune": 10051}
    assert counts["vn-2025-07"] == {"province": 34, "commune": 3321}
    area = body["data"]["area"]
    assert area["name"] == "Tỉnh Bắc Giang"
    assert area["parent"] is None
    assert len(area["children"]) == 10
    assert {c["level"] for c in area["children"]} == {"district"}
    assert {c["parent"]["code"] for c in area["children"]} == {"24"}
    # Bắc Giang went into the new Bắc Ninh province (code 24 of vn-2025-07).
    assert [(s["geography"], s["code"]) for s in area["successors"]] == [("vn-2025-07", "24")]


async def test_commune_predecessors(client: httpx.AsyncClient) -> None:
    body = await gql(
        client, '{ area(geography: "vn-2025-07", code: "15010") { predecessors { geography code kind } } }'
    )
    assert "errors" not in body, body
    links = body["data"]["area"]["predecessors"]
    assert links
    assert all(link["geography"] == "vn-2025-01" for link in links)


async def test_areas_connection_pages_like_rest(client: httpx.AsyncClient) -> None:
    query = """query($after: String) {
      areas(filter: {geography: "vn-2025-07", level: "province"}, first: 20, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { code } } } }"""
    first = (await gql(client, query))["data"]["areas"]
    assert first["totalCount"] == 34
    assert first["pageInfo"]["hasNextPage"]
    second = (await gql(client, query, {"after": first["pageInfo"]["endCursor"]}))["data"]["areas"]
    assert not second["pageInfo"]["hasNextPage"]
    codes_ = [e["node"]["code"] for e in first["edges"] + second["edges"]]
    rest = (await client.get("/v1/areas", params={"geography": "vn-2025-07", "level": "province"})).json()
    assert codes_ == [a["code"] for a in rest["items"]]


async def test_accent_insensitive_search_and_bad_arguments(client: httpx.AsyncClient) -> None:
    found = await gql(
        client,
        '{ areas(filter: {geography: "vn-2025-01", q: "thanh hoa", level: "province"}) { nodes { code } } }',
    )
    assert found["data"]["areas"]["nodes"] == [{"code": "38"}]
    assert codes(await gql(client, '{ areas(filter: {geography: "vn-1999"}) { totalCount } }')) == [
        "unknown-geography"
    ]
    assert codes(await gql(client, '{ area(geography: "vn-2025-01", code: "99999") { code } }')) == [
        "unknown-area"
    ]
    assert codes(
        await gql(client, '{ areas(filter: {geography: "vn-2025-01"}, first: 100000) { totalCount } }')
    ) == ["invalid-parameter"]
    assert codes(
        await gql(client, '{ areas(filter: {geography: "vn-2025-01"}, after: "garbage") { totalCount } }')
    ) == ["invalid-parameter"]


async def test_indicators_in_both_languages(client: httpx.AsyncClient) -> None:
    query = '{ indicators(topic: "fertility") { code name topicLabel } indicator(code: "cbr") { code unit official { code } } }'
    vi = (await gql(client, query))["data"]
    en = (await client.post("/graphql?lang=en", json={"query": query})).json()["data"]
    header = (
        await client.post("/graphql", json={"query": query}, headers={"Accept-Language": "en-GB"})
    ).json()["data"]
    assert "CBR" in {i["code"] for i in vi["indicators"]}
    assert {i["topicLabel"] for i in vi["indicators"]} == {"Sinh"}
    assert {i["topicLabel"] for i in en["indicators"]} == {"Fertility"}
    assert en == header
    cbr_vi = next(i for i in vi["indicators"] if i["code"] == "CBR")
    cbr_en = next(i for i in en["indicators"] if i["code"] == "CBR")
    assert cbr_vi["name"] != cbr_en["name"]
    assert vi["indicator"]["official"]["code"] == "CBR"
    assert codes(await gql(client, '{ indicator(code: "NOPE") { code } }')) == ["unknown-indicator"]


async def test_releases_empty_on_reference_data(client: httpx.AsyncClient) -> None:
    assert (await gql(client, "{ releases { id } }"))["data"]["releases"] == []

"""Bad input, tried as a new user would, gets a 4xx problem+json that says what is wrong."""

from __future__ import annotations

import httpx
import pytest

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("url", "status", "code", "words"),
    [
        ("/v1/areas?geography=vn-1999", 404, "unknown-geography", "vn-2025-01"),
        ("/v1/areas", 400, "invalid-parameter", "geography"),
        ("/v1/areas?geography=vn-2025-07&level=district", 400, "invalid-parameter", "province, commune"),
        ("/v1/areas?geography=vn-2025-01&level=village", 400, "invalid-parameter", "village"),
        ("/v1/areas?geography=vn-2025-01&limit=abc", 400, "invalid-parameter", "limit"),
        ("/v1/areas?geography=vn-2025-01&limit=0", 400, "invalid-parameter", "limit"),
        ("/v1/areas?geography=vn-2025-01&limit=100000000", 400, "invalid-parameter", "maximum page size"),
        ("/v1/areas?geography=vn-2025-01&limit=99999999999999999999999", 400, "invalid-parameter", "limit"),
        ("/v1/areas?geography=vn-2025-01&cursor=%%%garbage", 400, "invalid-parameter", "cursor"),
        ("/v1/areas?geography=vn-2025-01&cursor=eyJ4IjoxfQ", 400, "invalid-parameter", "cursor"),
        ("/v1/areas?geography=vn-2025-01&parent=99999", 404, "unknown-area", "99999"),
        ("/v1/areas?geography=vn-2025-01&q=" + "x" * 500, 400, "invalid-parameter", "q"),
        ("/v1/areas/vn-2025-01/00000", 404, "unknown-area", "00000"),
        ("/v1/areas/nowhere/24", 404, "unknown-geography", "nowhere"),
        ("/v1/areas/vn-2025-01/99/successors", 404, "unknown-area", "99"),
        ("/v1/indicators/NOPE", 404, "unknown-indicator", "NOPE"),
        ("/v1/indicators?topic=astrology", 400, "invalid-parameter", "fertility"),
        ("/v1/indicators?lang=fr", 400, "invalid-parameter", "lang"),
        ("/v1/no-such-thing", 404, "not-found", "/v1/no-such-thing"),
    ],
)
async def test_bad_input_gets_a_problem(
    client: httpx.AsyncClient, url: str, status: int, code: str, words: str
) -> None:
    response = await client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert words in body["detail"]


async def test_wrong_method_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/geographies")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


async def test_malformed_query_string_is_handled(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/areas?geography=vn-2025-07&&level=province&=&%ZZ=1")
    assert response.status_code == 200
    assert response.json()["total"] == 34


@pytest.mark.parametrize(
    "url",
    [
        "/v1/areas?geography=%00vn&level=province",
        "/v1/periods?release=abc%00",
        "/v1/areas/vn-2025-01/24%00",
    ],
)
async def test_nul_characters_are_refused_before_any_database_sees_them(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "NUL" in response.json()["detail"]


async def test_other_control_characters_are_just_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/areas/vn-2025-01/2%094")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown-area"

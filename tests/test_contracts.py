"""The exported contracts match what the app serves: drift fails CI (`make export` refreshes them)."""

from __future__ import annotations

import httpx
import orjson

from app.contracts import OPENAPI_PATH, openapi_document, render_openapi


def test_exported_openapi_matches_the_app() -> None:
    assert OPENAPI_PATH.read_bytes() == render_openapi(), "openapi/openapi.json is stale: run `make export`"


def test_operation_ids_are_stable_and_unique() -> None:
    operations = [op["operationId"] for path in openapi_document()["paths"].values() for op in path.values()]
    assert len(operations) == len(set(operations))
    assert {"listAreas", "getArea", "listIndicators", "getIndicator", "listGeographies"} <= set(operations)


def test_every_route_is_documented() -> None:
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description") or operation.get("summary"), f"{method} {path}"


async def test_served_document_is_the_exported_one(client: httpx.AsyncClient) -> None:
    served = (await client.get("/v1/openapi.json")).json()
    assert served == orjson.loads(OPENAPI_PATH.read_bytes())

"""The exported SDL is the schema the app serves: drift fails the suite (`make export` refreshes it)."""

from __future__ import annotations

import httpx
from graphql import (
    build_ast_schema,
    build_client_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    parse,
    print_schema,
)

from app.contracts import SDL_PATH, render_sdl


def test_exported_sdl_matches_the_schema() -> None:
    assert SDL_PATH.read_text(encoding="utf-8") == render_sdl(), (
        "schema/schema.graphql is stale: run `make export`"
    )


async def test_served_schema_is_the_exported_one(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": get_introspection_query(descriptions=True, specified_by_url=True)}
    )
    served = print_schema(lexicographic_sort_schema(build_client_schema(response.json()["data"])))
    exported = build_ast_schema(parse(SDL_PATH.read_text(encoding="utf-8")))
    assert served == print_schema(lexicographic_sort_schema(exported))


def test_every_type_and_field_is_described() -> None:
    schema = build_ast_schema(parse(SDL_PATH.read_text(encoding="utf-8")))
    for name, kind in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        assert kind.description, name
        for field_name, field in (getattr(kind, "fields", None) or {}).items():
            assert field.description, f"{name}.{field_name}"

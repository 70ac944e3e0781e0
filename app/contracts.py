"""The published contracts (the OpenAPI document and the GraphQL SDL), exported by `make export` and diffed by
the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OPENAPI_PATH = ROOT / "openapi" / "openapi.json"
SDL_PATH = ROOT / "schema" / "schema.graphql"


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(environment="development")).openapi()
    return document


def render_openapi() -> bytes:
    return orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def render_sdl() -> str:
    from schema.build import sdl

    return sdl()


def main() -> None:
    OPENAPI_PATH.write_bytes(render_openapi())
    print(f"wrote {OPENAPI_PATH.relative_to(ROOT)}")
    SDL_PATH.write_text(render_sdl(), encoding="utf-8")
    print(f"wrote {SDL_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

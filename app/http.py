"""JSON responses encoded once with orjson, and a request's query string read once."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson
from starlette.responses import JSONResponse

Pairs = tuple[tuple[str, str], ...]

REMEMBERED_QUERY_BYTES: Final = 2048  # longer query strings are parsed each time, not remembered


class OrjsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def query_pairs(raw: bytes) -> Pairs:
    """A raw query string's (name, value) pairs, decoded, blanks kept, in order. The gateway's
    cache key and a route's query model read the same string one after the other, so the last few
    are remembered (a parse was ~2% of an uncached data request)."""
    return _recent_pairs(raw) if len(raw) <= REMEMBERED_QUERY_BYTES else _pairs(raw)


def _pairs(raw: bytes) -> Pairs:
    return tuple(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


_recent_pairs = lru_cache(maxsize=256)(_pairs)

"""Keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

from app.errors import InvalidParameter

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    next_after: str | None  # the sort key to continue after, or None on the last page


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> str | None:
    """The sort key a cursor continues after; a cursor that was not issued here is a 400."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidParameter("cursor is not valid; use the `next` link of a previous page") from None
    if not isinstance(value, str):
        raise InvalidParameter("cursor is not valid; use the `next` link of a previous page")
    return value

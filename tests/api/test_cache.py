"""The response cache's own bookkeeping: the publication epoch and the request key."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from app.cache import ResponseStore, request_key
from auth.principal import Tier


class _Sessions:
    """Stands in for the session factory: counts epoch reads, each taking a moment."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> _Sessions:
        return self

    async def __aenter__(self) -> _Sessions:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute(self, _statement: Any) -> SimpleNamespace:
        self.reads += 1
        await asyncio.sleep(0.01)
        return SimpleNamespace(one=lambda: (self.reads, "2025-01-01"))


def _scope(sessions: _Sessions) -> dict[str, Any]:
    return {"app": SimpleNamespace(state=SimpleNamespace(sessions=sessions))}


async def test_concurrent_requests_share_one_epoch_read() -> None:
    sessions = _Sessions()
    store = ResponseStore(1024, None, 60, epoch_seconds=60)
    epochs = await asyncio.gather(*(store.epoch(_scope(sessions)) for _ in range(16)))
    assert sessions.reads == 1
    assert set(epochs) == {"1:2025-01-01"}
    assert await store.epoch(_scope(sessions)) == "1:2025-01-01"  # within the period: not read again
    assert sessions.reads == 1


async def test_epoch_is_read_again_after_its_period() -> None:
    sessions = _Sessions()
    store = ResponseStore(1024, None, 60, epoch_seconds=0)
    assert await store.epoch(_scope(sessions)) == "1:2025-01-01"
    assert await store.epoch(_scope(sessions)) == "2:2025-01-01"


def test_request_key_ignores_parameter_order_and_spelling_but_not_headers() -> None:
    def scope(query: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
        return {"path": "/v1/data/POP", "query_string": query, "headers": headers or []}

    key = request_key("1:x", scope(b"area=24&period=2024"), Tier.PUBLIC)
    assert request_key("1:x", scope(b"period=2024&area=24"), Tier.PUBLIC) == key
    assert request_key("1:x", scope(b"period=2024&area=%32%34"), Tier.PUBLIC) == key
    assert request_key("1:x", scope(b"area=24&period=2023"), Tier.PUBLIC) != key
    assert request_key("2:x", scope(b"area=24&period=2024"), Tier.PUBLIC) != key
    assert request_key("1:x", scope(b"area=24&period=2024"), Tier.DEPARTMENT) != key
    assert request_key("1:x", scope(b"area=24&period=2024", [(b"accept", b"text/csv")]), Tier.PUBLIC) != key
    english = [(b"accept-language", b"en")]
    assert request_key("1:x", scope(b"area=24&period=2024", english), Tier.PUBLIC) != key

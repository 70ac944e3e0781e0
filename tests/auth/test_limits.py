"""Rate limits: bursts get 429 with the headers, in-process and on Redis; a Redis outage is survived."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.gateway import Gateway
from app.main import create_app
from auth.limits import FixedWindows
from tests.auth import support
from tests.backends import REDIS_URL
from tests.conftest import serve, settings_for

needs_redis = pytest.mark.skipif(REDIS_URL is None, reason="needs PORTAL_TEST_REDIS_URL")


def _limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["ratelimit-limit"]),
        int(response.headers["ratelimit-remaining"]),
        int(response.headers["ratelimit-reset"]),
    )


async def test_a_keyless_burst_gets_429_with_headers_in_process(
    reference_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(
        reference_database,
        redis_url=None,
        rate_limit_public="5/minute",
        rate_limit_department="10/minute",
        redis_key_prefix=support.unique("limits-"),
    )
    code = await support.department(settings, capsys)
    system = await support.client(settings, capsys, code)
    async with serve(create_app(settings)) as http:
        remaining = []
        for _ in range(5):
            response = await http.get("/v1/geographies")
            assert response.status_code == 200
            limit, left, reset = _limit_headers(response)
            assert limit == 5
            assert 0 < reset <= 60
            remaining.append(left)
        assert remaining == [4, 3, 2, 1, 0]
        refused = await http.get("/v1/geographies")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert _limit_headers(refused)[:2] == (5, 0)
        assert refused.json()["code"] == "rate-limited"
        assert refused.json()["tier"] == "public"
        missing = await http.get("/v1/nothing-here")
        assert missing.status_code == 429  # routing comes after the limit
        # Probes are exempt; the department client has its own, larger bucket.
        probes = [(await http.get("/health")).status_code for _ in range(10)]
        assert probes == [200] * 10
        token = await support.access_token(http, system)
        mine = await http.get("/v1/nothing-here", headers=support.bearer(token))
        assert mine.status_code == 404
        assert _limit_headers(mine)[:2] == (10, 9)
        assert mine.headers["x-portal-tier"] == "department"
        policy = (await http.get("/v1/limits", headers=support.bearer(token))).json()
        assert policy["tiers"]["public"] == {
            "limit": 5,
            "window_seconds": 60,
            "per": "client IP",
            "text": "5 per 1 minute",
        }
        assert policy["tiers"]["department"]["limit"] == 10
        assert policy["scopes"]["data:read:internal"] == "internal"


async def test_answers_from_behind_the_gateway_and_from_its_cache_are_limited(
    reference_database: str,
) -> None:
    """The gateway in front of a stand-in app that answers without routing: the first answer is kept
    and the second comes from the cache, both counted; the third is refused before either."""
    settings = settings_for(
        reference_database,
        redis_url=None,
        rate_limit_public="2/minute",
        redis_key_prefix=support.unique("gw-"),
    )
    app = create_app(settings)
    seen: list[str] = []

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["state"]["principal"].tier.value)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x-answered-by", b"stand-in")]}
        )
        await send({"type": "http.response.body", "body": b"answer"})

    async with app.router.lifespan_context(app):
        gateway = Gateway(
            answer,
            settings=settings,
            access=app.state.access,
            store=app.state.response_store,
            reference=app.state.reference,
        )
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
            first, second, third = [await http.get("/v1/areas") for _ in range(3)]
    assert first.content == second.content == b"answer"
    assert second.headers["x-answered-by"] == "stand-in"
    assert first.headers["x-portal-tier"] == second.headers["x-portal-tier"] == "public"
    assert [_limit_headers(r)[1] for r in (first, second)] == [1, 0]
    assert third.status_code == 429
    assert seen == ["public"]
    assert app.state.response_store.hits == 1


def test_local_windows_reset_and_stay_bounded() -> None:
    windows = FixedWindows(60, max_keys=3)
    assert windows.hit("a", 0.0) == (1, 60.0)
    assert windows.hit("a", 59.0) == (2, 60.0)
    assert windows.hit("a", 60.0) == (1, 120.0)  # the window ended: a new one opens
    windows.hit("b", 70.0)
    windows.hit("c", 125.0)  # a's window has ended by now: dropped as c's opens
    assert len(windows) == 2
    windows.hit("d", 126.0)
    windows.hit("e", 127.0)  # over max_keys: the oldest open window (b's) ends early
    assert len(windows) == 3
    assert windows.hit("b", 128.0) == (1, 188.0)


class TcpProxy:
    """A local TCP proxy to the shared Redis that a test can stop and start (never the server itself)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers.difference_update((writer, upstream_writer))


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    assert REDIS_URL is not None
    target = httpx.URL(REDIS_URL)
    proxy = TcpProxy(target.host, target.port or 6379)
    await proxy.start()
    try:
        yield proxy
    finally:
        with contextlib.suppress(Exception):
            await proxy.stop()


@needs_redis
async def test_limits_are_shared_through_redis_and_survive_an_outage(
    reference_database: str, redis_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    assert REDIS_URL is not None
    database = httpx.URL(REDIS_URL).path or "/0"
    settings = settings_for(
        reference_database,
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}{database}",
        rate_limit_public="6/minute",
        redis_key_prefix=support.unique("limits-redis-"),
        redis_retry_seconds=0.3,
    )
    async with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        # Two processes, one budget: the counters live in Redis.
        statuses = []
        for http in (first, second, first, second, first, second):
            response = await http.get("/v1/geographies")
            statuses.append((response.status_code, _limit_headers(response)[1]))
        assert statuses == [(200, 5), (200, 4), (200, 3), (200, 2), (200, 1), (200, 0)]
        assert (await second.get("/v1/geographies")).status_code == 429

        await redis_proxy.stop()
        caplog.set_level(logging.WARNING, logger="portal.access.limits")
        during = [await first.get("/v1/geographies") for _ in range(3)]
        assert [r.status_code for r in during] == [200, 200, 200]  # local counters, not an outage
        assert [_limit_headers(r)[1] for r in during] == [5, 4, 3]
        assert "Redis unreachable" in caplog.text

        await redis_proxy.start()
        await asyncio.sleep(0.4)
        after = await first.get("/v1/geographies")
        assert after.status_code == 429  # back on the shared counter, which is spent
        assert "Redis is back" in caplog.text

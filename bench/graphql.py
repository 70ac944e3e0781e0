"""Benchmark: the portal's GraphQL against datasette-graphql on the same cells, side by side in one run.

    python -m bench.graphql [--scale 0.02] [--requests 400] [--concurrency 8]

1. publish the demo register (`portal demo --scale 0.02`) into a temporary SQLite database;
2. export the cells the benchmark asks for (released for the public tier, so the same numbers) to a
   plain SQLite table, and serve it with datasette + datasette-graphql from their own virtual
   environment (created under var/bench/, never part of the portal's dependencies);
3. run both servers with uvicorn's defaults on loopback, one process each, and send each the same
   bounded number of requests for the same cells: the communes of a province (population and CBR
   for a year) and the whole mobile screen (plus the province's pyramid);
4. print requests/s and p50/p99 latency with the ratios (goal: 10x datasette's requests/s, never
   under 4x) and what a typical mobile screen query costs (cells, statements, bytes, time). The
   executed scenarios send `Cache-Control: no-cache`, so the portal works every answer out; the
   others show what its answer store (POST) and ETag cache (GET) make of a repeated screen. With
   wrk installed, the cached GET is also loaded by wrk for 5 s: the Python generator's own cost caps
   it near 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.rest_api import wrk_case

ROOT = Path(__file__).resolve().parents[1]
DATASETTE_VENV = ROOT / "var" / "bench" / "datasette-venv"
DATASETTE_PACKAGES = ("datasette==0.65.5", "datasette-graphql==2.2")
PROVINCE, GEOGRAPHY, YEAR = "38", "vn-2025-07", "2024"
GOAL, FLOOR = 10.0, 4.0

COMMUNES_PORTAL = """query { pop: observations(indicator: "POP", geography: "vn-2025-07", parent: "38",
  level: "commune", periods: ["2024"]) { items { area value status } }
 cbr: observations(indicator: "CBR", geography: "vn-2025-07", parent: "38", level: "commune",
  periods: ["2024"]) { items { area value status } } }"""
SCREEN_PORTAL = """query { area(geography: "vn-2025-07", code: "38") { name
  pyramid: observations(indicator: "POP", periods: ["2024"], by: [SEX, AGE5]) { items { sex age value status } }
  children { code name
    pop: observations(indicator: "POP", periods: ["2024"]) { items { value status } }
    cbr: observations(indicator: "CBR", periods: ["2024"]) { items { value status } } } } }"""
COMMUNES_DATASETTE = """query { pop: cells(filter: {indicator: {eq: "POP"}, parent: {eq: "38"}, level: {eq: "commune"}},
  first: 1000) { nodes { area value status } }
 cbr: cells(filter: {indicator: {eq: "CBR"}, parent: {eq: "38"}, level: {eq: "commune"}}, first: 1000)
  { nodes { area value status } } }"""
SCREEN_DATASETTE = """query { province: cells(filter: {area: {eq: "38"}, indicator: {eq: "POP"}, sex: {isnull: true}})
  { nodes { area_name value } }
 pyramid: cells(filter: {indicator: {eq: "PYRAMID"}, area: {eq: "38"}}, first: 100) { nodes { sex age value status } }
 pop: cells(filter: {indicator: {eq: "POP"}, parent: {eq: "38"}, level: {eq: "commune"}}, first: 1000)
  { nodes { area area_name value status } }
 cbr: cells(filter: {indicator: {eq: "CBR"}, parent: {eq: "38"}, level: {eq: "commune"}}, first: 1000)
  { nodes { area value status } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def portal_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PORTAL_DATABASE_URL=database_url,
        PORTAL_ENVIRONMENT="development",
        # Both servers run without rate limits: the benchmark measures answering, not refusing.
        PORTAL_RATE_LIMIT_PUBLIC="10000000/minute",
        PYTHONPATH=str(ROOT),
    )
    env.pop("PORTAL_REDIS_URL", None)
    return env


def publish_demo(database_url: str, scale: float) -> None:
    command = [sys.executable, "-m", "app.cli", "demo", "--scale", str(scale)]
    subprocess.run(command, env=portal_env(database_url), check=True, stdout=subprocess.DEVNULL, cwd=ROOT)


async def export_cells(database_url: str, target: Path) -> int:
    """The benchmark's cells, released for the public tier, as one plain table for datasette."""
    from app.db import create_engine, session_factory
    from app.reference import read_snapshot
    from app.services.data import DataRequest, DataService
    from app.settings import Settings
    from auth.principal import Tier

    engine = create_engine(Settings(database_url=database_url))
    rows: list[tuple[Any, ...]] = []
    try:
        async with session_factory(engine)() as session:
            data = DataService(session, 10_000, await read_snapshot(session))
            asks = [
                ("POP", DataRequest("POP", GEOGRAPHY, YEAR, parent=PROVINCE, level="commune")),
                ("CBR", DataRequest("CBR", GEOGRAPHY, YEAR, parent=PROVINCE, level="commune")),
                ("POP", DataRequest("POP", GEOGRAPHY, YEAR, area=PROVINCE)),
                ("PYRAMID", DataRequest("POP", GEOGRAPHY, YEAR, area=PROVINCE, by="sex,age5")),
            ]
            for name, request in asks:
                labelled = await data.observations(request, Tier.PUBLIC)
                for o in labelled.result.observations:
                    area = labelled.areas[o.area]
                    rows.append(
                        (
                            name,
                            o.area,
                            area.name,
                            area.level,
                            area.parent_code,
                            o.period,
                            o.breakdown.get("sex"),
                            o.breakdown.get("age"),
                            o.value,
                            o.status.value,
                        )
                    )
    finally:
        await engine.dispose()
    with sqlite3.connect(target) as db:
        db.execute(
            "create table cells (indicator text, area text, area_name text, level text, parent text, "
            "period text, sex text, age text, value real, status text)"
        )
        db.executemany("insert into cells values (?,?,?,?,?,?,?,?,?,?)", rows)
        # Indexes a datasette publisher would add for these filters, so the baseline is fair.
        db.execute("create index cells_parent on cells (indicator, parent, level)")
        db.execute("create index cells_area on cells (indicator, area)")
    return len(rows)


def datasette_python() -> Path:
    python = DATASETTE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DATASETTE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *DATASETTE_PACKAGES], check=True)
    return python


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, probe: str) -> Any:
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


async def load(
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], requests: int, concurrency: int
) -> dict[str, float]:
    """Requests/s and latency percentiles of `requests` requests, `concurrency` at a time."""
    latencies: list[float] = []
    queue = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in queue:
            start = time.perf_counter()
            response = await send(client)
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200 or "errors" in response.json():
                raise RuntimeError(f"benchmark request failed: {response.text[:500]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        for _ in range(10):  # warm-up: connections, caches of both servers
            await send(client)
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


# Sent by the executed scenarios to both servers: the portal then works each answer out afresh
# instead of taking it from its answer store (datasette-graphql keeps no answers).
FRESH = {"Cache-Control": "no-cache"}


def post(
    url: str, query: str, headers: dict[str, str] | None = None
) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.post(url, json={"query": query}, headers=headers)


def get(url: str, query: str) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    return lambda client: client.get(url, params={"query": query})


async def screen_cost(database_url: str) -> dict[str, float]:
    """One mobile screen in process: cells charged, SQL statements, response bytes and time."""
    from sqlalchemy import event

    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(database_url=database_url, rate_limit_public="10000000/minute"))
    statements: list[str] = []
    async with app.router.lifespan_context(app):
        engine = app.state.engine.sync_engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            await client.post("/graphql", json={"query": SCREEN_PORTAL})  # warm the caches
            event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            start = time.perf_counter()
            response = await client.post("/graphql", json={"query": SCREEN_PORTAL}, headers=FRESH)
            elapsed = (time.perf_counter() - start) * 1000
    area = response.json()["data"]["area"]
    communes = len(area["children"])
    return {
        "communes": communes,
        "cells": len(area["pyramid"]["items"]) + 2 * communes,
        "statements": len(statements),
        "bytes": len(response.content),
        "ms": elapsed,
    }


FLOOR_SDL = """
type Observation { sex: String, age: String, value: Float, status: String }
type Result { items: [Observation!]! }
type Area { code: String!, name: String!, children: [Area!]!
  observations(indicator: String!, periods: [String!]!, by: [String!]): Result! }
type Query { area(geography: String!, code: String!): Area }
"""
FLOOR_QUERY = SCREEN_PORTAL.replace("[SEX, AGE5]", '["sex", "age5"]')


def executor_floor_ms(communes: int, pyramid: int, repeat: int = 20) -> float:
    """graphql-core alone executing the mobile screen's result shape from plain dictionaries, with
    its default resolvers (no Strawberry, no query service): what any executed screen costs at least."""
    from graphql import build_schema, execute, parse

    schema = build_schema(FLOOR_SDL)
    cell = {"sex": "male", "age": "0-4", "value": 1.5, "status": "A"}

    def observations(cells: int) -> Callable[..., dict[str, Any]]:
        return lambda _info, **_args: {"items": [cell] * cells}

    child: dict[str, Any] = {"code": "00001", "name": "Xã", "children": [], "observations": observations(1)}
    province: dict[str, Any] = {"code": PROVINCE, "name": "Tỉnh", "children": [child] * communes}
    province["observations"] = observations(pyramid)
    document = parse(FLOOR_QUERY)
    root = {"area": lambda _info, **_args: province}
    result = execute(schema, document, root_value=root)
    assert not result.errors, result.errors  # type: ignore[union-attr]
    start = time.perf_counter()
    for _ in range(repeat):
        execute(schema, document, root_value=root)
    return (time.perf_counter() - start) / repeat * 1000


def row(name: str, portal: dict[str, float], baseline: dict[str, float] | None) -> str:
    cells = [f"{name:<34}", f"{portal['rps']:>9.0f}", f"{portal['p50']:>8.1f}", f"{portal['p99']:>8.1f}"]
    if baseline is None:
        return " ".join(cells)
    ratio = portal["rps"] / baseline["rps"]
    verdict = "goal met" if ratio >= GOAL else ("above floor" if ratio >= FLOOR else "BELOW FLOOR")
    cells += [
        f"{baseline['rps']:>9.0f}",
        f"{baseline['p50']:>8.1f}",
        f"{baseline['p99']:>8.1f}",
        f"{ratio:>6.1f}x",
        f"{baseline['p50'] / portal['p50']:>6.1f}x",
        verdict,
    ]
    return " ".join(cells)


async def main_async(args: argparse.Namespace) -> None:
    python = datasette_python()
    with tempfile.TemporaryDirectory(prefix="bench-graphql-") as tmp:
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'portal.db'}"
        started = time.perf_counter()
        publish_demo(database_url, args.scale)
        exported = await export_cells(database_url, Path(tmp) / "cells.db")
        print(
            f"demo release (scale {args.scale}) published, {exported} cells exported in {time.perf_counter() - started:.0f} s"
        )
        cost = await screen_cost(database_url)
        pyramid = cost["cells"] - 2 * cost["communes"]
        portal_port, datasette_port = free_port(), free_port()
        portal_cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
            "--host", "127.0.0.1", "--port", str(portal_port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        datasette_cmd = [
            str(python), "-m", "datasette", "serve", str(Path(tmp) / "cells.db"), "--host", "127.0.0.1",
            "--port", str(datasette_port), "--setting", "num_sql_threads", "3",
        ]  # fmt: skip
        env = portal_env(database_url)
        results: dict[str, dict[str, float]] = {}
        portal_url = f"http://127.0.0.1:{portal_port}/graphql"
        datasette_url = f"http://127.0.0.1:{datasette_port}/graphql/cells"
        with server(portal_cmd, env, portal_port, "/health"):
            results["portal communes"] = await load(
                post(portal_url, COMMUNES_PORTAL, FRESH), args.requests, args.concurrency
            )
            results["portal screen"] = await load(
                post(portal_url, SCREEN_PORTAL, FRESH), args.requests, args.concurrency
            )
            results["portal screen POST stored"] = await load(
                post(portal_url, SCREEN_PORTAL), args.requests, args.concurrency
            )
            results["portal screen GET"] = await load(
                get(portal_url, SCREEN_PORTAL), args.requests, args.concurrency
            )
            if shutil.which("wrk"):
                # The Python generator tops out near 1,000 requests/s, under what a cached answer takes.
                paths = Path(tmp) / "screen.paths"
                paths.write_text(f"/graphql?{urlencode({'query': SCREEN_PORTAL})}\n")
                measured = wrk_case(
                    "screen GET",
                    f"http://127.0.0.1:{portal_port}",
                    paths,
                    0,
                    5,
                    args.concurrency,
                    1,
                    Path(tmp),
                )
                results["portal screen GET wrk"] = {
                    "rps": measured.rps,
                    "p50": measured.p50_ms,
                    "p99": measured.p99_ms,
                }
        floor_ms = executor_floor_ms(int(cost["communes"]), int(pyramid))
        with server(datasette_cmd, dict(os.environ), datasette_port, "/-/versions.json"):
            results["datasette communes"] = await load(
                post(datasette_url, COMMUNES_DATASETTE, FRESH), args.requests, args.concurrency
            )
            results["datasette screen"] = await load(
                post(datasette_url, SCREEN_DATASETTE, FRESH), args.requests, args.concurrency
            )
    print(
        f"\n{args.requests} requests per scenario, {args.concurrency} concurrent, one uvicorn process each, loopback\n"
    )
    header = f"{'scenario':<34} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'ds rps':>9} {'ds p50':>8} {'ds p99':>8} {'rps x':>7} {'p50 x':>7}"
    print(header)
    print("-" * len(header))
    print(
        row("communes: POP + CBR (POST, executed)", results["portal communes"], results["datasette communes"])
    )
    print(row("mobile screen (POST, executed)", results["portal screen"], results["datasette screen"]))
    print(
        row(
            "mobile screen (POST, answer store)",
            results["portal screen POST stored"],
            results["datasette screen"],
        )
    )
    print(row("mobile screen (GET, ETag cache)", results["portal screen GET"], results["datasette screen"]))
    if "portal screen GET wrk" in results:
        print(row("  the same, loaded by wrk", results["portal screen GET wrk"], results["datasette screen"]))
    print(
        f"\nmobile screen: 1 request, {cost['communes']:.0f} communes, {cost['cells']:.0f} cells charged of the "
        f"{10_000} cap, {cost['statements']:.0f} SQL statements, {cost['bytes'] / 1024:.1f} KiB, {cost['ms']:.1f} ms in process"
    )
    most = 1000 / floor_ms
    print(
        f"graphql-core alone, executing a result of the screen's shape from plain dictionaries: {floor_ms:.1f} ms, "
        f"at most {most:.0f} requests/s on one core, {most / results['datasette screen']['rps']:.1f}x datasette-graphql's screen"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Benchmark: the REST data API against a bare ASGI app and against Datasette, on SQLite and PostgreSQL.

    python -m bench.rest_api [--duration 10] [--warmup 2] [--connections 16] [--scale 0.02] [--no-postgres]

All figures come from one run on this machine:
1. Setup: a temporary SQLite database and a PostgreSQL database created for the run
   (`portal_bench_<random>`, dropped at the end), each with `portal geography load` and
   `portal demo --scale 0.02` (a synthetic release). Rate limits are raised through settings, so
   every request is still counted and checked but none is refused.
2. Servers, each its own process under the same server (uvicorn, one worker, `--no-access-log`,
   loopback, its own port): the portal on SQLite, the portal on PostgreSQL, a bare ASGI app (below)
   returning the exact bytes and headers the portal returned for the cached URL, and Datasette
   (installed into its own virtual environment under var/bench-venv, never into the project's) serving
   the same published cells from a table `observations(indicator, area, period, sex, value, status,
   perturbed)` exported from the portal.
3. Load: wrk (Debian package `wrk`: `apt-get install -y wrk`) with a Lua script that rotates
   through the paths of a file; without wrk, a Python asyncio + httpx load generator at the same
   fixed concurrency (its own CPU cost caps the figures, so the report says which one ran).
   Cached GET: one URL, answered by the response cache after the warm-up. Uncached GET: tens of
   thousands of distinct (indicator, area, period) URLs, each asked at most once per server, so
   every request misses the response cache and runs the query; the same cells are asked of
   Datasette. The query reads its published rows through the process's row cache
   (app/query/rows.py), as in service: neighbouring questions share rows (a year and its quarters,
   POP and CBR of an area). A third SQLite portal with `PORTAL_ROW_CACHE_MAX_BYTES=0` shows the
   same run with every row read from the database.
   Datasette runs twice, before and after the uncached portal cases: its figures moved by up to
   40% between runs, and the ratios take the better of the two (the higher requests/s, the lower
   p99), so that a slow Datasette run cannot flatter the portal.
4. Report: requests/s, p50 and p99 per case, and the ratios against the performance goals:
   cached GET >= 80% of bare ASGI's requests/s (never under 60%), p99 at most 2x bare's;
   uncached GET >= 10x Datasette's requests/s (never under 5x), p99 at most half of Datasette's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import random
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / "var" / "bench-venv"
CACHED_PATH = "/v1/data/POP?area=24&period=2024&by=sex"
INDICATORS = ("POP", "CBR")
LEVELS = ("province", "district", "commune")
NO_ROWS = "sqlite-no-rows"  # the SQLite portal without its row cache
DATASETTE_AGAIN = "Datasette, again"  # its second run, after the uncached portal cases
GOALS = {
    # case: (requests/s goal, requests/s floor, p99 ceiling) as fractions of the reference's figures
    "cached": (0.80, 0.60, 2.0),
    "uncached": (10.0, 5.0, 0.5),
}

WRK_SCRIPT = r"""
-- Rotates through the paths of BENCH_PATHS, starting at BENCH_OFFSET; threads interleave, so no
-- path is asked twice before the list is used up.
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

function init(args)
  step = tonumber(os.getenv("BENCH_THREADS") or "1")
  i = offset + tid
end

function request()
  local path = paths[i % #paths + 1]
  i = i + step
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non2xx": %d, ' ..
    '"socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""

DATASETTE_FACTORY = """
import os
from datasette.app import Datasette

def create():
    # Immutable file and no suggested facets: Datasette as fast as its documentation makes it.
    return Datasette(immutables=[os.environ["BENCH_CELLS_DB"]], settings={"suggest_facets": False}).app()
"""


# The bare ASGI app: the same bytes and headers as the portal's cached answer, nothing else.
def bare_app() -> Callable[..., Awaitable[None]]:
    saved = json.loads(Path(os.environ["BENCH_BARE_RESPONSE"]).read_text())
    body = bytes.fromhex(saved["body"])
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in saved["headers"]]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    message = {"type": "http.response.body", "body": body}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send(start)
        await send(message)

    return app


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-1500:]}{done.stderr[-3000:]}")
    return done.stdout


class Children:
    """Every child process of the run; all stopped at the end, whatever happened."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def log_tail(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def uvicorn_command(python: str, app: str, port: int) -> list[str]:
    return [
        python, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def wait_ready(base: str, path: str, proc: subprocess.Popen[bytes], children: Children, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited:\n{children.log_tail(name)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + path, timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{name} did not answer {path} within 60 s:\n{children.log_tail(name)}")


def prepare_database(env: dict[str, str], scale: float) -> None:
    portal = [sys.executable, "-m", "app.cli"]
    run([*portal, "geography", "load"], env)
    report = json.loads(run([*portal, "demo", "--scale", str(scale)], env))
    if report["status"] != "published":
        raise SystemExit(f"demo did not publish: {report.get('message')}")


async def postgres(admin_url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def datasette_python() -> str:
    """The benchmark's own environment with Datasette and the portal's uvicorn version (created once)."""
    python = BENCH_VENV / "bin" / "python"
    uvicorn = importlib.metadata.version("uvicorn")
    marker = BENCH_VENV / f".ready-uvicorn-{uvicorn}"
    if not marker.exists():
        print(f"creating {BENCH_VENV} with datasette and uvicorn[standard]=={uvicorn} ...", flush=True)
        run([sys.executable, "-m", "venv", str(BENCH_VENV)], dict(os.environ))
        run(
            [str(python), "-m", "pip", "install", "--quiet", "datasette", f"uvicorn[standard]=={uvicorn}"],
            dict(os.environ),
        )
        marker.touch()
    return str(python)


def export_cells(base: str, cells_db: Path) -> list[tuple[str, str, str]]:
    """Every published cell of INDICATORS x LEVELS x whole years, quarters and months, as the portal's
    JSON has it. Months too, so that a measured run at a few thousand requests a second meets no URL
    twice (years and quarters alone gave ~23,000 fresh URLs for the measured run)."""
    periods = httpx.get(base + "/v1/periods", timeout=30).json()
    cells: list[tuple[str, str, str, str | None, float | None, str, bool]] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for indicator in INDICATORS:
            for level in LEVELS:
                for period in [*periods["year"], *periods["quarter"], *periods["month"]]:
                    url: str | None = f"/v1/data/{indicator}?level={level}&period={period}&limit=1000"
                    while url:
                        response = client.get(url)
                        if response.status_code == 422 and response.json()["code"] == "finer-than-published":
                            break  # not published at this detail (monthly births of a district, say)
                        response.raise_for_status()
                        page = response.json()
                        cells += [
                            (
                                indicator,
                                item["area"],
                                item["period"],
                                item.get("sex"),
                                item["value"],
                                item["status"],
                                item["perturbed"],
                            )
                            for item in page["items"]
                        ]
                        url = page["next"]
    cells_db.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(cells_db)) as db:
        db.execute(
            "CREATE TABLE observations (indicator TEXT, area TEXT, period TEXT, sex TEXT, value REAL, "
            "status TEXT, perturbed INTEGER)"
        )
        db.executemany("INSERT INTO observations VALUES (?, ?, ?, ?, ?, ?, ?)", cells)
        db.execute("CREATE INDEX observations_cell ON observations (indicator, area, period)")
        db.commit()
    return [(indicator, area, period) for indicator, area, period, *_ in cells]


def check_same_cells(portal: str, datasette: str, keys: list[tuple[str, str, str]], sample: int) -> int:
    """Portal and Datasette answer the same values for a sample of cells; the count of disagreements."""
    bad = 0
    for indicator, area, period in random.Random(5).sample(keys, sample):
        ours = httpx.get(f"{portal}/v1/data/{indicator}?area={area}&period={period}", timeout=30).json()
        theirs = httpx.get(
            f"{datasette}/cells/observations.json?indicator={indicator}&area={area}&period={period}&_shape=array",
            timeout=30,
        ).json()
        if [i["value"] for i in ours["items"]] != [r["value"] for r in theirs]:
            bad += 1
    return bad


def wrk_case(
    name: str, base: str, paths: Path, offset: int, seconds: float, connections: int, threads: int, work: Path
) -> Figures:
    script = work / "rotate.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_PATHS": str(paths),
        "BENCH_OFFSET": str(offset),
        "BENCH_THREADS": str(threads),
    }
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), base,
    ]  # fmt: skip
    out = run(command, env)
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    raw = json.loads(line.removeprefix("BENCH "))
    return Figures(
        name,
        raw["requests"],
        raw["duration_us"] / 1e6,
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        raw["non2xx"],
        raw["socket_errors"],
    )


def python_case(
    name: str,
    base: str,
    paths: Path,
    offset: int,
    seconds: float,
    connections: int,
    _threads: int,
    _work: Path,
) -> Figures:
    """Fallback load generator: `connections` asyncio workers on one httpx client, for `seconds`."""
    urls = paths.read_text().splitlines()

    async def load() -> Figures:
        latencies: list[float] = []
        counter = offset
        non2xx = errors = 0
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
            stop = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal counter, non2xx, errors
                while time.perf_counter() < stop:
                    path = urls[counter % len(urls)]
                    counter += 1
                    start = time.perf_counter()
                    try:
                        response = await client.get(path)
                    except httpx.HTTPError:
                        errors += 1
                        continue
                    latencies.append(time.perf_counter() - start)
                    non2xx += not 200 <= response.status_code < 400

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        latencies.sort()

        def at(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

        return Figures(name, len(latencies), elapsed, at(0.50), at(0.99), non2xx, errors)

    return asyncio.run(load())


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    # Under var/ of the checkout rather than /tmp, which other jobs of a shared machine may sweep.
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-rest-", dir=ROOT / "var"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verdict(ratio: float, goal: float, floor: float, higher_is_better: bool) -> str:
    if higher_is_better:
        return "PASS" if ratio >= goal else "BELOW-GOAL" if ratio >= floor else "FAIL"
    return "PASS" if ratio <= goal else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each case")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--scale", type=float, default=0.02, help="portal demo --scale")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="admin DSN")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite cases only")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator")
    args = parser.parse_args()

    use_wrk = shutil.which("wrk") is not None and not args.python_load
    if not use_wrk and not args.python_load:
        print("wrk not found (Debian: apt-get install -y wrk); using the Python asyncio + httpx generator")
    case = wrk_case if use_wrk else python_case
    generator = (
        f"wrk {subprocess.run(['wrk', '-v'], capture_output=True, text=True, check=False).stdout.split()[1]}"
        if use_wrk
        else f"Python asyncio + httpx {httpx.__version__}"
    )
    pg_name = f"portal_bench_{secrets.token_hex(4)}"
    pg_host = args.postgres.split("@", 1)[-1].rsplit("/", 1)[0]
    pg_user = args.postgres.split("://", 1)[1].split("@", 1)[0]
    backends = ["sqlite"] if args.no_postgres else ["sqlite", "postgres"]
    pg_created = False

    with workdir() as work:
        children = Children(work)
        base_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PORTAL_ENVIRONMENT": "development",
            "PORTAL_RATE_LIMIT_PUBLIC": "100000000/minute",
            "PORTAL_RATE_LIMIT_DEPARTMENT": "100000000/minute",
            "PORTAL_RATE_LIMIT_INTERNAL": "100000000/minute",
        }
        base_env.pop("PORTAL_REDIS_URL", None)
        envs = {"sqlite": {**base_env, "PORTAL_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'portal.db'}"}}
        if "postgres" in backends:
            envs["postgres"] = {
                **base_env,
                "PORTAL_DATABASE_URL": f"postgresql+asyncpg://{pg_user}@{pg_host}/{pg_name}",
            }
        try:
            started = time.perf_counter()
            if "postgres" in backends:
                asyncio.run(postgres(args.postgres, f'CREATE DATABASE "{pg_name}"'))
                pg_created = True
            # Both releases are built at once (each in its own child processes).
            with ThreadPoolExecutor(len(backends)) as pool:
                for future in [pool.submit(prepare_database, envs[b], args.scale) for b in backends]:
                    future.result()
            setup_s = time.perf_counter() - started
            ds_python = datasette_python()

            ports = {name: free_port() for name in [*backends, "bare", "datasette"]}
            bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            envs[NO_ROWS] = {**envs["sqlite"], "PORTAL_ROW_CACHE_MAX_BYTES": "0"}
            ports[NO_ROWS] = free_port()
            bases[NO_ROWS] = f"http://127.0.0.1:{ports[NO_ROWS]}"
            for b in [*backends, NO_ROWS]:
                proc = children.start(
                    f"portal-{b}", uvicorn_command(sys.executable, "app.main:create_app", ports[b]), envs[b]
                )
                wait_ready(bases[b], "/health", proc, children, f"portal-{b}")

            # The bare app answers what the portal answered for the cached URL, byte for byte.
            answer = httpx.get(bases["sqlite"] + CACHED_PATH, timeout=30)
            answer.raise_for_status()
            saved = {
                "body": answer.content.hex(),
                "headers": [(k, v) for k, v in answer.headers.multi_items() if k not in ("date", "server")],
            }
            (work / "bare.json").write_text(json.dumps(saved))
            proc = children.start(
                "bare",
                uvicorn_command(sys.executable, "bench.rest_api:bare_app", ports["bare"]),
                {**base_env, "BENCH_BARE_RESPONSE": str(work / "bare.json")},
            )
            wait_ready(bases["bare"], "/", proc, children, "bare")
            bare_answer = httpx.get(bases["bare"] + CACHED_PATH, timeout=30)
            assert bare_answer.content == answer.content, "bare app answers other bytes"
            assert bare_answer.headers["content-type"] == answer.headers["content-type"]

            keys = export_cells(bases["sqlite"], work / "cells.db")
            (work / "datasette_factory.py").write_text(DATASETTE_FACTORY)
            proc = children.start(
                "datasette",
                uvicorn_command(ds_python, "datasette_factory:create", ports["datasette"]),
                {**os.environ, "PYTHONPATH": str(work), "BENCH_CELLS_DB": str(work / "cells.db")},
            )
            wait_ready(bases["datasette"], "/cells/observations.json?_size=1", proc, children, "datasette")
            mismatches = {b: check_same_cells(bases[b], bases["datasette"], keys, 40) for b in backends}

            order = random.Random(11).sample(keys, len(keys))
            portal_paths, datasette_paths = work / "portal.paths", work / "datasette.paths"
            portal_paths.write_text("".join(f"/v1/data/{i}?area={a}&period={p}\n" for i, a, p in order))
            datasette_paths.write_text(
                "".join(
                    f"/cells/observations.json?indicator={i}&area={a}&period={p}&_shape=array\n"
                    for i, a, p in order
                )
            )
            cached_paths = work / "cached.paths"
            cached_paths.write_text(CACHED_PATH + "\n")

            figures: dict[str, Figures] = {}
            # Warm-up rotates through the last third of the list, the measured run from the start: no
            # uncached path is asked twice of one server unless a run gets through two thirds of it.
            warm_offset = 2 * len(keys) // 3

            def measure(name: str, server: str, paths: Path, offset: int = 0, warm: int = 0) -> None:
                a = (name, bases[server], paths)
                case(*a, warm, args.warmup, args.connections, args.threads, work)
                figures[name] = case(*a, offset, args.duration, args.connections, args.threads, work)
                print(f"  measured {name}: {figures[name].rps:,.0f} requests/s", flush=True)

            print(
                f"load: {generator}, {args.connections} connections, {args.duration:g} s after {args.warmup:g} s warm-up"
            )
            measure("bare ASGI", "bare", cached_paths)
            for b in backends:
                measure(f"cached GET {b}", b, cached_paths)
            measure("Datasette", "datasette", datasette_paths, 0, warm_offset)
            for b in [*backends, NO_ROWS]:
                measure(f"uncached GET {b}", b, portal_paths, 0, warm_offset)
            measure(DATASETTE_AGAIN, "datasette", datasette_paths, 0, warm_offset)

            report(
                figures,
                backends,
                generator,
                args,
                setup_s,
                len(keys),
                warm_offset,
                mismatches,
                len(answer.content),
            )
        finally:
            children.stop_all()
            if pg_created:
                asyncio.run(postgres(args.postgres, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


def report(
    figures: dict[str, Figures],
    backends: list[str],
    generator: str,
    args: argparse.Namespace,
    setup_s: float,
    urls: int,
    warm_offset: int,
    mismatches: dict[str, int],
    cached_bytes: int,
) -> None:
    print()
    print(
        f"REST data API benchmark ({generator}; {args.connections} connections, {args.duration:g} s per case"
    )
    print(
        f"after a {args.warmup:g} s warm-up; uvicorn 1 worker, loopback; {os.cpu_count()} cores, shared with"
    )
    print("other processes: absolute figures vary with the load, the ratios are run side by side)")
    if generator.startswith("Python"):
        print(
            "NOTE: the Python generator is client-bound (it caps every case, the bare app most): install wrk"
        )
    print(f"setup: portal demo --scale {args.scale:g} on {' and '.join(backends)} in {setup_s:.0f} s")
    print(f"cached URL: {CACHED_PATH} ({cached_bytes} bytes)")
    print(
        f"uncached URLs: {urls:,} distinct (indicator x area x period: {', '.join(INDICATORS)} x "
        f"{', '.join(LEVELS)} x years, quarters and months); Datasette asked for the same cells"
    )
    print(
        "cells agreeing with Datasette's (sample of 40): "
        + ", ".join(f"{b} {40 - bad}/40" for b, bad in mismatches.items())
    )
    print()
    print(
        f"{'case':<28} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8} {'errors':>7}"
    )
    for f in figures.values():
        print(
            f"{f.name:<28} {f.rps:>11,.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} {f.requests:>9,} "
            f"{f.non2xx:>8} {f.socket_errors:>7}"
        )
    for b in [*backends, NO_ROWS]:
        run_ = figures[f"uncached GET {b}"].requests
        if run_ > warm_offset:
            print(f"WARNING: uncached {b} made {run_:,} requests, more than the {warm_offset:,} fresh URLs")
    print()
    print("ratios (goal; floor)")
    # Datasette ran before and after the uncached portal cases; the ratios take its better figures.
    datasette = [figures["Datasette"], figures[DATASETTE_AGAIN]]
    references = {
        "cached": ("bare ASGI", figures["bare ASGI"].rps, figures["bare ASGI"].p99_ms),
        "uncached": ("Datasette", max(f.rps for f in datasette), min(f.p99_ms for f in datasette)),
    }
    for b in [*backends, NO_ROWS]:
        for kind, (reference, their_rps, their_p99) in references.items():
            if f"{kind} GET {b}" not in figures:
                continue
            ours = figures[f"{kind} GET {b}"]
            goal, floor, p99_max = GOALS[kind]
            rps = ours.rps / their_rps
            p99 = ours.p99_ms / their_p99
            what = f"{kind} GET {b} vs {reference}"
            print(
                f"  {what:<42} requests/s {rps:6.2f}x (>= {goal:g}x; {floor:g}x) "
                f"{verdict(rps, goal, floor, True):<10}  p99 {p99:5.2f}x (<= {p99_max:g}x) "
                f"{verdict(p99, p99_max, p99_max, False)}"
            )


if __name__ == "__main__":
    main()

"""Benchmark: build and publish the full-scale synthetic register, then time indicator queries.

    python -m bench.release_build [--scale 1.0] [--queries 1000]

Stages run in child processes so that each one's wall time and peak memory are its own:
1. generate the synthetic register (scale 1.0 = 5.4 million persons, 54 months) and write canonical CSVs;
2. `portal ingest csv` into a fresh SQLite database: read, validate, build, publish (the measured build);
3. a sample of indicator queries through the query service on the published release.
Goals (issue 3, 2-core machine): build <= 60 s (never over 120 s), peak memory < 4 GB, and a query for
one area x one year x 5-year groups x sex under 5 ms median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD_GOAL_S, BUILD_LIMIT_S, MEMORY_LIMIT_GB, QUERY_GOAL_MS = 60.0, 120.0, 4.0, 5.0


def run_child(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in GB (of this child alone, from wait4) and stdout of a child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{err.read().decode()[-3000:]}")
        return wall, usage.ru_maxrss / 1e6, out.read().decode()


GENERATE = """
import sys
from pathlib import Path
from connectors.csv_dir import write_register
from connectors.demo import demo_connector
import asyncio
source = asyncio.run(demo_connector(float(sys.argv[1]), 2025).read())
write_register(Path(sys.argv[2]), source)
print(source.persons.height, source.events.height)
"""


async def time_queries(database_url: str, count: int) -> dict[str, float]:
    from app.db import create_engine, session_factory
    from app.query.periods import parse_periods
    from app.query.service import ObservationQuery, QueryService
    from app.settings import Settings

    settings = Settings(database_url=database_url)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    rng = random.Random(7)
    areas = ["24", "38", "213", "380", "07201", "14755", "15010", "389"]
    years = ["2021", "2022", "2023", "2024"]
    mixed = ["POP", "CBR", "CDR", "TFR", "SRB", "IMR", "CPR", "NMR", "AGE_65P", "MEDIAN_AGE", "URB", "AHS"]
    pyramid, sample = [], []
    try:
        async with sessions() as session:
            service = QueryService(session, settings.max_cells)
            for i in range(count):
                query = ObservationQuery(
                    "POP",
                    "vn-2025-01",
                    (rng.choice(areas),),
                    tuple(parse_periods(rng.choice(years))),
                    by=("sex", "age5"),
                )
                start = time.perf_counter()
                result = await service.observations(query)
                pyramid.append((time.perf_counter() - start) * 1000)
                assert len(result.observations) == 42, i
                code = rng.choice(mixed)
                period = rng.choice([*years, "2024-Q2", "2023-07"])
                query = ObservationQuery(
                    code, "vn-2025-01", (rng.choice(areas),), tuple(parse_periods(period))
                )
                start = time.perf_counter()
                await service.observations(query)
                sample.append((time.perf_counter() - start) * 1000)
    finally:
        await engine.dispose()
    return {
        "pyramid_median_ms": statistics.median(pyramid),
        "pyramid_p95_ms": statistics.quantiles(pyramid, n=20)[18],
        "mixed_median_ms": statistics.median(sample),
        "mixed_p95_ms": statistics.quantiles(sample, n=20)[18],
        "mixed_total_s": sum(sample) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "PORTAL_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
    }
    portal = [sys.executable, "-m", "app.cli"]

    generate_s, generate_gb, counts = run_child(
        [sys.executable, "-c", GENERATE, str(args.scale), str(work / "register")], env
    )
    persons, events = (int(x) for x in counts.split())
    run_child([*portal, "geography", "load"], env)
    build_s, build_gb, report_text = run_child([*portal, "ingest", "csv", str(work / "register")], env)
    report = json.loads(report_text)
    if report["status"] != "published":
        sys.exit(f"ingest did not publish: {report['message']}")
    queries = asyncio.run(time_queries(env["PORTAL_DATABASE_URL"], args.queries))
    database_mb = (work / "bench.db").stat().st_size / 1e6

    print(f"scale {args.scale}: {persons:,} persons, {events:,} events; {report['message']}")
    print(
        f"generate synthetic register + write CSV: {generate_s:6.1f} s, peak {generate_gb:.2f} GB (not part of the build)"
    )
    print(
        f"build (read, validate, count, publish):   {build_s:6.1f} s, peak {build_gb:.2f} GB; stages {report['seconds']}"
    )
    print(
        f"  vs goal {BUILD_GOAL_S:.0f} s: {build_s / BUILD_GOAL_S:.2f}x   vs limit {BUILD_LIMIT_S:.0f} s: {build_s / BUILD_LIMIT_S:.2f}x   "
        f"memory vs {MEMORY_LIMIT_GB:.0f} GB: {build_gb / MEMORY_LIMIT_GB:.2f}x"
    )
    print(f"database: {database_mb:.0f} MB (SQLite)")
    print(
        f"query one area x one year x age5 x sex: median {queries['pyramid_median_ms']:.2f} ms, p95 {queries['pyramid_p95_ms']:.2f} ms"
        f" (vs goal {QUERY_GOAL_MS:.0f} ms: {queries['pyramid_median_ms'] / QUERY_GOAL_MS:.2f}x)"
    )
    print(
        f"{args.queries} mixed indicator queries: {queries['mixed_total_s']:.2f} s in all, median {queries['mixed_median_ms']:.2f} ms,"
        f" p95 {queries['mixed_p95_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()

"""Benchmark: build and publish the full-scale synthetic register, then time indicator queries.

    python -m bench.release_build [--scale 1.0] [--queries 1000]

Stages run in child processes so that each one's wall time and peak memory are its own:
1. generate the synthetic register (scale 1.0 = 5.4 million persons, 54 months) and write canonical CSVs;
2. `portal ingest csv` into a fresh SQLite database: read, validate, build, publish (the measured build);
3. a sample of indicator queries through the query service on the published release.
Goals (2-core machine): build <= 60 s (never over 120 s), peak memory < 4 GB, and a query for
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
    """The pyramid as the public gets it, and a mixed sample as a department does (refusals counted)."""
    from app.db import create_engine, session_factory
    from app.errors import DomainError
    from app.query.periods import parse_periods
    from app.query.service import ObservationQuery, QueryService
    from app.reference import read_snapshot
    from app.settings import Settings
    from auth.principal import Tier

    settings = Settings(database_url=database_url)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    rng = random.Random(7)
    areas = ["24", "38", "213", "380", "07201", "14755", "15010", "389"]
    years = ["2021", "2022", "2023", "2024"]
    mixed = ["POP", "CBR", "CDR", "TFR", "SRB", "IMR", "CPR", "NMR", "AGE_65P", "MEDIAN_AGE", "URB", "AHS"]
    pyramid, sample, refused = [], [], 0
    try:
        async with sessions() as session:
            service = QueryService(session, settings.max_cells, await read_snapshot(session))
            for i in range(count):
                query = ObservationQuery(
                    "POP",
                    "vn-2025-01",
                    (rng.choice(areas),),
                    tuple(parse_periods(rng.choice(years))),
                    by=("sex", "age5"),
                )
                start = time.perf_counter()
                result = await service.observations(query, Tier.PUBLIC)
                pyramid.append((time.perf_counter() - start) * 1000)
                assert len(result.observations) == 42, i
                code = rng.choice(mixed)
                period = rng.choice([*years, "2024-Q2", "2023-07"])
                query = ObservationQuery(
                    code, "vn-2025-01", (rng.choice(areas),), tuple(parse_periods(period))
                )
                start = time.perf_counter()
                try:
                    await service.observations(query, Tier.DEPARTMENT)
                except DomainError:
                    refused += 1  # finer than the tier's atoms: answered with a 4xx, timed all the same
                sample.append((time.perf_counter() - start) * 1000)
    finally:
        await engine.dispose()
    return {
        "pyramid_median_ms": statistics.median(pyramid),
        "pyramid_p95_ms": statistics.quantiles(pyramid, n=20)[18],
        "mixed_median_ms": statistics.median(sample),
        "mixed_p95_ms": statistics.quantiles(sample, n=20)[18],
        "mixed_total_s": sum(sample) / 1000,
        "mixed_refused": refused,
    }


async def utility(database_url: str) -> list[tuple[str, int, float, float]]:
    """Relative error of published values against the truth (internal tier), by area level and indicator."""
    from app.db import create_engine, session_factory
    from app.query.periods import parse_periods
    from app.query.service import ObservationQuery, QueryService
    from app.reference import read_snapshot
    from app.repositories.geography import GeographyRepository
    from app.settings import Settings
    from auth.principal import Tier

    settings = Settings(database_url=database_url, max_cells=100_000)
    engine = create_engine(settings)
    rows: list[tuple[str, int, float, float]] = []
    try:
        async with session_factory(engine)() as session:
            service = QueryService(session, settings.max_cells, await read_snapshot(session))
            geography = GeographyRepository(session)
            levels = {
                level: [
                    code
                    for province in ("24", "38")
                    for code in await geography.descendant_codes("vn-2025-01", province, level)
                ]
                for level in ("commune", "district")
            }
            levels["province"] = ["24", "38"]
            cases = [("POP", level, "2024") for level in ("commune", "district", "province")]
            cases += [
                (code, level, "2024") for code in ("CBR", "CDR", "TFR") for level in ("district", "province")
            ]
            for code, level, period in cases:
                areas = tuple(levels[level])
                if code == "TFR" and level != "province":
                    continue  # public only at province level (mother's age by province x year)
                query = ObservationQuery(code, "vn-2025-01", areas, tuple(parse_periods(period)))
                published = await service.observations(query, Tier.PUBLIC)
                true = await service.observations(query, Tier.INTERNAL)
                errors = [
                    abs(p.value - t.value) / t.value * 100
                    for p, t in zip(published.observations, true.observations, strict=True)
                    if p.value is not None and t.value
                ]
                errors.sort()
                p95 = errors[min(len(errors) - 1, int(0.95 * len(errors)))]
                rows.append((f"{code} {level}", len(errors), statistics.median(errors), p95))
    finally:
        await engine.dispose()
    return rows


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
    database_mb = (work / "bench.db").stat().st_size / 1e6

    print(f"scale {args.scale}: {persons:,} persons, {events:,} events; {report['message']}")
    print(
        f"generate synthetic register + write CSV: {generate_s:6.1f} s, peak {generate_gb:.2f} GB (not part of the build)"
    )
    print(
        f"build (read, validate, count, perturb, publish): {build_s:6.1f} s, peak {build_gb:.2f} GB; stages {report['seconds']}"
    )
    print(
        f"  vs goal {BUILD_GOAL_S:.0f} s: {build_s / BUILD_GOAL_S:.2f}x   vs limit {BUILD_LIMIT_S:.0f} s: {build_s / BUILD_LIMIT_S:.2f}x   "
        f"memory vs {MEMORY_LIMIT_GB:.0f} GB: {build_gb / MEMORY_LIMIT_GB:.2f}x"
    )
    print(f"database: {database_mb:.0f} MB (SQLite)", flush=True)
    queries = asyncio.run(time_queries(env["PORTAL_DATABASE_URL"], args.queries))
    print(
        f"public query, one area x one year x age5 x sex: median {queries['pyramid_median_ms']:.2f} ms, "
        f"p95 {queries['pyramid_p95_ms']:.2f} ms (vs goal {QUERY_GOAL_MS:.0f} ms: "
        f"{queries['pyramid_median_ms'] / QUERY_GOAL_MS:.2f}x)"
    )
    print(
        f"{args.queries} mixed department queries: {queries['mixed_total_s']:.2f} s in all, median "
        f"{queries['mixed_median_ms']:.2f} ms, p95 {queries['mixed_p95_ms']:.2f} ms "
        f"({queries['mixed_refused']:.0f} refused as finer than the tier's atoms)",
        flush=True,
    )
    print("utility, public tier vs truth (relative error, %):")
    for label, n, median, p95 in asyncio.run(utility(env["PORTAL_DATABASE_URL"])):
        print(f"  {label:<16} {n:5d} areas   median {median:7.3f}   p95 {p95:7.3f}")


if __name__ == "__main__":
    main()

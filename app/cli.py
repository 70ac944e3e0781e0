"""The `portal` command: serve the API and run the population office's data tasks."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson

from app.db import create_engine, session_factory, transaction, upgrade_database
from app.errors import DomainError
from app.settings import Settings
from connectors.base import RegisterConnector

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _print_json(payload: Any) -> None:
    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")


async def _db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()
    print(f"database at the latest migration: {settings.database_url}")
    return 0


async def _geography_load(_args: argparse.Namespace, settings: Settings) -> int:
    from connectors.reference import load_reference_data

    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        async with transaction(session_factory(engine)) as session:
            report = await load_reference_data(session)
    finally:
        await engine.dispose()
    _print_json(report.as_dict())
    return 0


async def _ensure_reference(settings: Settings) -> None:
    """Every data command works on a fresh database: migrations and reference data come first."""
    from connectors.reference import load_reference_data

    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        async with transaction(session_factory(engine)) as session:
            await load_reference_data(session)
    finally:
        await engine.dispose()


async def _ingest(connector: RegisterConnector, settings: Settings, allow_rejects: bool) -> int:
    from app.services.ingest import IngestService

    await _ensure_reference(settings)
    engine = create_engine(settings)
    try:
        service = IngestService(session_factory(engine), settings.privacy_secret.get_secret_value())
        report = await service.ingest(connector, allow_rejects=allow_rejects)
    finally:
        await engine.dispose()
    _print_json(report.as_dict())
    return 0 if report.status in ("published", "unchanged") else 1


async def _ingest_csv(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.csv_dir import CsvDirectoryConnector

    return await _ingest(CsvDirectoryConnector(Path(args.directory)), settings, args.allow_rejects)


async def _ingest_sql(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.sql import SqlConnector

    return await _ingest(SqlConnector(args.url), settings, args.allow_rejects)


async def _ingest_census(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.census import publish_census

    await _ensure_reference(settings)
    engine = create_engine(settings)
    try:
        report = await publish_census(session_factory(engine))
    finally:
        await engine.dispose()
    _print_json(report)
    return 0


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.csv_dir import write_register
    from connectors.demo import demo_connector

    connector = demo_connector(args.scale, args.seed)
    if args.export:
        write_register(Path(args.export), await connector.read())
        print(f"wrote the synthetic demo register to {args.export}", file=sys.stderr)
    return await _ingest(connector, settings, allow_rejects=False)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    asyncio.run(_db_upgrade(args, settings))
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (applies migrations first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(sync_handler=_serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(handler=_db_upgrade)

    geography = commands.add_parser("geography", help="reference geography and indicator catalogue")
    geography_actions = geography.add_subparsers(dest="action", required=True)
    geography_actions.add_parser(
        "load", help="load geography versions, the crosswalk and the indicator catalogue (idempotent)"
    ).set_defaults(handler=_geography_load)

    ingest = commands.add_parser("ingest", help="load a register and publish a release").add_subparsers(
        dest="connector", required=True
    )
    csv_command = ingest.add_parser("csv", help="a directory of canonical CSVs with manifest.json")
    csv_command.add_argument("directory")
    sql_command = ingest.add_parser("sql", help="the register's tables in a PostgreSQL database")
    sql_command.add_argument("url", help="e.g. postgresql://user@host:5432/register")
    for command, handler in ((csv_command, _ingest_csv), (sql_command, _ingest_sql)):
        command.add_argument(
            "--allow-rejects", action="store_true", help="publish the valid rows even when some are rejected"
        )
        command.set_defaults(handler=handler)
    ingest.add_parser("census2019", help="the 2019 census totals as a reference release").set_defaults(
        handler=_ingest_census
    )

    demo = commands.add_parser(
        "demo", help="build and publish the synthetic demo register (Bắc Giang, Thanh Hóa)"
    )
    demo.add_argument(
        "--scale", type=float, default=0.05, help="fraction of the real population (1.0 = 5.4 million)"
    )
    demo.add_argument("--seed", type=int, default=2025)
    demo.add_argument("--export", metavar="DIR", help="also write it as canonical CSVs")
    demo.set_defaults(handler=_demo)
    return parser


async def run(argv: Sequence[str], settings: Settings) -> int:
    """Run a data command (everything but `serve`) on the running event loop."""
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    return await handler(args, settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"portal: invalid settings: {exc}", file=sys.stderr)
        return 2
    if hasattr(args, "sync_handler"):
        result: int = args.sync_handler(args, settings)
        return result
    handler: Command = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except DomainError as exc:
        print(f"portal: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

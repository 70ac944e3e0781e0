"""The `portal` command: serve the API and run the population office's data tasks."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson

from app.db import create_engine, session_factory, transaction, upgrade_database
from app.settings import Settings

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
    return parser


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
    return asyncio.run(handler(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())

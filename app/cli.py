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


# ---- access: departments, clients, API keys, users (every action is written to the audit log) -------


async def _access(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
    """Run `work(AccessService)` in one transaction on an up-to-date database."""
    from auth.repository import AccessRepository
    from auth.service import AccessService

    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        async with transaction(session_factory(engine)) as session:
            return await work(AccessService(AccessRepository(session), settings))
    finally:
        await engine.dispose()


def _client_json(client: Any, department: Any, secret: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "client_id": client.id,
        "name": client.name,
        "department": department.code,
        "kind": "system" if client.confidential else "app",
        "status": client.status,
        "scopes": client.scopes.split(),
        "grant_types": client.grant_types.split(),
        "redirect_uris": client.redirect_uris.split(),
    }
    if secret is not None:
        payload["client_secret"] = secret  # shown once; only its hash is stored
    return payload


async def _departments_create(args: argparse.Namespace, settings: Settings) -> int:
    from auth.service import Actor

    department = await _access(
        settings, lambda s: s.create_department(Actor.cli(), args.code, args.name, args.contact)
    )
    _print_json({"code": department.code, "name": department.name, "contact": department.contact})
    return 0


async def _departments_list(_args: argparse.Namespace, settings: Settings) -> int:
    departments = await _access(settings, lambda s: s.repository.list_departments())
    _print_json([{"code": d.code, "name": d.name, "contact": d.contact} for d in departments])
    return 0


async def _departments_token(args: argparse.Namespace, settings: Settings) -> int:
    from auth.service import Actor

    token, plain = await _access(settings, lambda s: s.issue_initial_access_token(Actor.cli(), args.code))
    _print_json(
        {"department": args.code, "initial_access_token": plain, "expires_at": token.expires_at.isoformat()}
    )
    return 0


async def _clients_create(args: argparse.Namespace, settings: Settings) -> int:
    from auth.service import Actor

    new = await _access(
        settings,
        lambda s: s.create_client(
            Actor.cli(), args.department, args.name, not args.public, args.redirect_uri or [], args.scopes
        ),
    )
    _print_json(_client_json(new.client, new.department, new.secret))
    return 0


async def _clients_status(args: argparse.Namespace, settings: Settings) -> int:
    from auth.service import Actor

    async def work(service: Any) -> Any:
        client = await service.set_client_status(Actor.cli(), args.client_id, args.status)
        return client, await service.repository.get_department(client.department_id)

    client, department = await _access(settings, work)
    _print_json(_client_json(client, department))
    return 0


async def _clients_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = await _access(settings, lambda s: s.list_clients(args.status, args.department))
    _print_json([_client_json(c, d) for c, d in rows])
    return 0


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "client_id": key.client_id,
        "prefix": key.prefix,
        "name": key.name,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


async def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from auth.service import Actor

    new = await _access(settings, lambda s: s.create_key(Actor.cli(), args.client, args.name))
    _print_json({**_key_json(new.key), "api_key": new.plain})  # shown once
    return 0


async def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from auth.service import Actor

    key = await _access(settings, lambda s: s.revoke_key(Actor.cli(), args.key_id))
    _print_json(_key_json(key))
    return 0


async def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    keys = await _access(settings, lambda s: s.list_keys(args.client))
    _print_json([_key_json(k) for k in keys])
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise DomainError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 10:
        raise DomainError("a password needs at least 10 characters")
    return password


async def _users_create(args: argparse.Namespace, settings: Settings) -> int:
    from auth.crypto import hash_password
    from auth.service import Actor

    password_hash = await asyncio.to_thread(hash_password, _read_password())
    user = await _access(
        settings, lambda s: s.create_user(Actor.cli(), args.department, args.username, password_hash)
    )
    _print_json({"username": user.username, "department": args.department})
    return 0


async def _signing_keys_rotate(_args: argparse.Namespace, settings: Settings) -> int:
    from auth.tokens import SigningKeys

    engine = create_engine(settings)
    try:
        await upgrade_database(engine)
        kid = await SigningKeys(settings, session_factory(engine)).rotate()
    finally:
        await engine.dispose()
    _print_json({"kid": kid, "note": "older keys keep verifying until their tokens expire"})
    return 0


def _add_access_commands(commands: Any) -> None:
    departments = commands.add_parser("departments", help="departments that use the data").add_subparsers(
        dest="action", required=True
    )
    create = departments.add_parser("create", help="register a department")
    create.add_argument("--code", required=True, help="short stable code, e.g. SLDTBXH")
    create.add_argument("--name", required=True)
    create.add_argument("--contact", help="e-mail of the department's contact")
    create.set_defaults(handler=_departments_create)
    departments.add_parser("list", help="registered departments").set_defaults(handler=_departments_list)
    token = departments.add_parser("token", help="an initial access token for RFC 7591 registration")
    token.add_argument("code")
    token.set_defaults(handler=_departments_token)

    clients = commands.add_parser("clients", help="OAuth2 clients").add_subparsers(
        dest="action", required=True
    )
    create = clients.add_parser("create", help="create a client (pending until approved)")
    create.add_argument("--department", required=True, help="department code")
    create.add_argument("--name", required=True)
    create.add_argument("--public", action="store_true", help="a public client (mobile app, PKCE, no secret)")
    create.add_argument("--redirect-uri", action="append", help="repeat for several")
    create.add_argument("--scopes", help="space-separated; default data:read data:read:commune")
    create.set_defaults(handler=_clients_create)
    for verb, status in (("approve", "approved"), ("suspend", "suspended")):
        command = clients.add_parser(verb, help=f"{verb} a client")
        command.add_argument("client_id")
        command.set_defaults(handler=_clients_status, status=status)
    listing = clients.add_parser("list", help="clients, optionally by status or department")
    listing.add_argument("--status", choices=["pending", "approved", "suspended"])
    listing.add_argument("--department")
    listing.set_defaults(handler=_clients_list)

    keys = commands.add_parser("keys", help="API keys of department systems").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--client", required=True, help="client_id of a confidential client")
    create.add_argument("--name", default="", help="what the key is for")
    create.set_defaults(handler=_keys_create)
    revoke = keys.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(handler=_keys_revoke)
    listing = keys.add_parser("list", help="API keys (never the keys themselves)")
    listing.add_argument("--client")
    listing.set_defaults(handler=_keys_list)

    users = commands.add_parser("users", help="department users of the login page").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create a user; the password is read from stdin or prompted")
    create.add_argument("--department", required=True)
    create.add_argument("--username", required=True)
    create.set_defaults(handler=_users_create)

    signing = commands.add_parser("signing-keys", help="JWT signing keys").add_subparsers(
        dest="action", required=True
    )
    signing.add_parser("rotate", help="start signing with a new key").set_defaults(
        handler=_signing_keys_rotate
    )


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
    _add_access_commands(commands)
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

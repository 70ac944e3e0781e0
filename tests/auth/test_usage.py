"""Usage figures and the plan's KPIs over a registry built from scratch; the audit log of admin actions."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import create_engine, upgrade_database
from app.main import create_app
from tests.auth import support
from tests.conftest import serve, settings_for

ADMIN_SCOPES = "admin:clients admin:usage admin:audit data:read:internal"


async def test_usage_and_kpis_report_the_registered_apps_and_departments(
    empty_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(empty_database, credential_cache_seconds=0)
    engine = create_engine(settings)
    await upgrade_database(engine)
    await engine.dispose()
    labour = await support.department(settings, capsys, "Sở Lao động")
    police = await support.department(settings, capsys, "Công an tỉnh")
    office = await support.department(settings, capsys, "Chi cục Dân số")
    labour_system = await support.client(settings, capsys, labour)
    labour_app = await support.client(settings, capsys, labour, public=True)
    police_system = await support.client(settings, capsys, police)
    police_pending = await support.client(settings, capsys, police, approve=False)
    admin = await support.client(settings, capsys, office, scopes=ADMIN_SCOPES)
    police_key = await support.cli(
        ["keys", "create", "--client", police_system["client_id"]], settings, capsys
    )

    # Phase 1: traffic; the figures are flushed when the app shuts down.
    async with serve(create_app(settings)) as http:
        token = await support.access_token(http, labour_system)
        for _ in range(4):
            assert (await http.get("/v1/geographies", headers=support.bearer(token))).status_code == 200
        assert (await http.get("/v1/nothing", headers=support.bearer(token))).status_code == 404
        for _ in range(2):
            assert (
                await http.get("/v1/indicators", headers={"X-API-Key": police_key["api_key"]})
            ).status_code == 200
        for _ in range(3):
            await http.get("/v1/geographies")

    app = create_app(settings)
    async with serve(app) as http:
        admin_token = await support.access_token(http, admin)
        usage = await http.get("/v1/admin/usage", headers=support.bearer(admin_token))
        assert usage.status_code == 200, usage.text
        body = usage.json()
        # Token requests authenticate inside /oauth, after the gateway: they count as keyless.
        assert body["anonymous"] == {"oauth": 1, "reference": 3}
        departments = {d["code"]: d for d in body["departments"]}
        assert set(departments) == {labour, police, office}
        assert departments[labour]["requests"] == {"data": 1, "reference": 4}
        assert departments[labour]["apps"] == 1
        assert departments[labour]["systems"] == 1
        assert departments[labour]["active_clients"] == 1
        assert departments[police]["requests"] == {"reference": 2}
        assert departments[police]["clients"] == 2
        assert departments[police]["systems"] == 1  # the pending one is not counted
        assert departments[office]["uses_data"] is False
        per_client = {c["client_id"]: c for d in body["departments"] for c in d["usage"]}
        assert per_client[labour_app["client_id"]]["requests"] == {}
        assert per_client[police_pending["client_id"]]["status"] == "pending"
        assert per_client[labour_system["client_id"]]["active_days"] == 1

        kpis = (await http.get("/v1/admin/kpis", headers=support.bearer(admin_token))).json()
        assert kpis["apps_using_data"] == {
            "value": 2,
            "targets": [{"phase": 1, "goal": 5, "met": False}, {"phase": 2, "goal": 10, "met": False}],
        }
        assert kpis["departments_using_data"]["value"] == pytest.approx(2 / 3, abs=1e-4)
        assert [t["met"] for t in kpis["departments_using_data"]["targets"]] == [False, False]
        assert kpis["departments"] == 3
        assert kpis["departments_active"] == 2
        assert kpis["clients_approved"] == 4
        assert kpis["requests"] == 4 + 1 + 2 + 3

        # Admin actions through the API are audited with who did them.
        approved = await http.post(
            f"/v1/admin/clients/{police_pending['client_id']}/approve", headers=support.bearer(admin_token)
        )
        assert approved.json()["status"] == "approved"
        created = await http.post(
            f"/v1/admin/clients/{police_pending['client_id']}/keys",
            json={"name": "đồng bộ"},
            headers=support.bearer(admin_token),
        )
        assert created.status_code == 201
        assert created.json()["api_key"].startswith("pdp_key_")
        revoked = await http.post(
            f"/v1/admin/keys/{created.json()['id']}/revoke", headers=support.bearer(admin_token)
        )
        assert revoked.json()["revoked_at"] is not None
        refused = await http.get("/v1/geographies", headers={"X-API-Key": created.json()["api_key"]})
        assert refused.status_code == 401

        # Internal-tier reads are audited before they are served.
        internal = await http.get(
            "/v1/geographies", params={"lang": "en"}, headers=support.bearer(admin_token)
        )
        assert internal.headers["x-portal-tier"] == "internal"
        audit = (await http.get("/v1/admin/audit", headers=support.bearer(admin_token))).json()["items"]
        actions = [(e["action"], e["actor"]) for e in audit]
        actor = f"client:{admin['client_id']}"
        assert actions[:4] == [
            ("data.read", actor),
            ("api_key.revoke", actor),
            ("api_key.create", actor),
            ("client.approve", actor),
        ]
        assert audit[0]["target"] == "/v1/geographies"
        assert audit[0]["detail"] == {"query": "lang=en"}
        assert audit[0]["tier"] == "internal"
        assert audit[3]["detail"] == {"previous": "pending"}
        cli_actions = {e["action"] for e in audit if e["actor"] == "cli"}
        assert {"department.create", "client.create", "client.approve", "api_key.create"} <= cli_actions
        only = (
            await http.get(
                "/v1/admin/audit",
                params={"action": "client.approve", "limit": 1},
                headers=support.bearer(admin_token),
            )
        ).json()
        assert [e["action"] for e in only["items"]] == ["client.approve"]
        assert only["next_before"] == only["items"][0]["id"]

        async with app.state.sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text("UPDATE audit_log SET actor = 'someone else'"))
            await session.rollback()
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text("DELETE FROM audit_log"))
            await session.rollback()


async def test_migration_0004_downgrades_and_upgrades(empty_database: str) -> None:
    from alembic import command
    from sqlalchemy import Connection, inspect

    from app.db import _alembic_config

    engine = create_engine(settings_for(empty_database))
    try:
        await upgrade_database(engine)

        def downgrade(connection: Connection) -> list[str]:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            return inspect(connection).get_table_names()

        async with engine.begin() as connection:
            tables = await connection.run_sync(downgrade)
        assert "oauth_client" not in tables
        assert "release" in tables
        await upgrade_database(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert {"department", "oauth_client", "oauth_token", "api_key", "usage_daily", "audit_log"} <= set(
            tables
        )
    finally:
        await engine.dispose()

"""The access commands of `portal`: JSON output, secrets shown once, clear errors."""

from __future__ import annotations

import pytest

from app.cli import main, run
from auth.errors import Conflict, UnknownDepartment
from tests.auth import support
from tests.conftest import settings_for


async def test_clients_create_prints_the_client_and_its_secret_once(
    empty_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(empty_database)
    created = await support.cli(
        ["departments", "create", "--code", "STP", "--name", "Sở Tư pháp", "--contact", "stp@example.vn"],
        settings,
        capsys,
    )
    assert created == {"code": "STP", "name": "Sở Tư pháp", "contact": "stp@example.vn"}
    system = await support.cli(
        ["clients", "create", "--department", "STP", "--name", "Hộ tịch", "--scopes", "data:read"],
        settings,
        capsys,
    )
    assert system["client_id"].startswith("pdp_")
    assert system["client_secret"].startswith("pdp_cs_")
    assert system["status"] == "pending"
    assert system["scopes"] == ["data:read"]
    assert system["grant_types"] == ["client_credentials"]
    app = await support.cli(
        [
            "clients",
            "create",
            "--department",
            "STP",
            "--name",
            "App",
            "--public",
            "--redirect-uri",
            "https://app.example.vn/cb",
        ],
        settings,
        capsys,
    )
    assert "client_secret" not in app
    assert app["grant_types"] == ["authorization_code", "refresh_token"]
    listed = await support.cli(["clients", "list", "--status", "pending"], settings, capsys)
    assert {c["client_id"] for c in listed} == {system["client_id"], app["client_id"]}
    assert all("client_secret" not in c for c in listed)
    suspended = await support.cli(["clients", "suspend", system["client_id"]], settings, capsys)
    assert suspended["status"] == "suspended"

    with pytest.raises(UnknownDepartment, match="no department with code 'NOPE'"):
        await run(["clients", "create", "--department", "NOPE", "--name", "x"], settings)
    with pytest.raises(Conflict):
        await run(["departments", "create", "--code", "STP", "--name", "again"], settings)
    from app.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="plain http"):
        await run(
            [
                "clients",
                "create",
                "--department",
                "STP",
                "--name",
                "x",
                "--public",
                "--redirect-uri",
                "http://app.example.vn/cb",
            ],
            settings,
        )
    with pytest.raises(InvalidParameter, match="API keys are for"):
        await run(["keys", "create", "--client", app["client_id"]], settings)


def test_main_reports_domain_errors_with_exit_code_1(
    empty_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", empty_database)
    assert main(["clients", "approve", "pdp_missing"]) == 1
    assert "no client 'pdp_missing'" in capsys.readouterr().err

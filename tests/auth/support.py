"""Helpers of the access tests: the CLI as an admin runs it, PKCE pairs, the consent form, tokens."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from app.cli import run
from app.settings import Settings

REDIRECT_URI = "vn.gov.danso.app:/callback"
PASSWORD = "mat-khau-rat-dai-2025"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6].upper()}"


async def cli(argv: list[str], settings: Settings, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run a `portal` command and return the JSON it printed."""
    capsys.readouterr()
    assert await run(argv, settings) == 0
    return orjson.loads(capsys.readouterr().out)


async def department(
    settings: Settings, capsys: pytest.CaptureFixture[str], name: str = "Sở Lao động"
) -> str:
    code = unique("SO")
    await cli(["departments", "create", "--code", code, "--name", name], settings, capsys)
    return code


async def client(
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    department_code: str,
    *,
    public: bool = False,
    scopes: str | None = None,
    approve: bool = True,
) -> dict[str, Any]:
    argv = ["clients", "create", "--department", department_code, "--name", unique("app-")]
    if public:
        argv += ["--public", "--redirect-uri", REDIRECT_URI]
    if scopes:
        argv += ["--scopes", scopes]
    created: dict[str, Any] = await cli(argv, settings, capsys)
    if approve:
        await cli(["clients", "approve", created["client_id"]], settings, capsys)
    return created


async def user(
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    department_code: str,
) -> str:
    import io

    username = unique("canbo").lower()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    await cli(["users", "create", "--department", department_code, "--username", username], settings, capsys)
    return username


async def client_credentials(
    http: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> httpx.Response:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return await http.post("/oauth/token", data=data, auth=(client_id, secret))


async def access_token(http: httpx.AsyncClient, created: dict[str, Any], scope: str | None = None) -> str:
    response = await client_credentials(http, created["client_id"], created["client_secret"], scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "trang-thai-42",
    }
    params.update(extra)
    return params


def form_request_field(html: str) -> str:
    match = re.search(r'name="request" value="([^"]+)"', html)
    assert match, "the consent page has no request field"
    return unescape(match.group(1))


async def login(
    http: httpx.AsyncClient, client_id: str, challenge: str, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = await http.get("/oauth/authorize", params=authorize_params(client_id, challenge))
    assert page.status_code == 200, page.text
    return await http.post(
        "/oauth/authorize",
        data={
            "request": form_request_field(page.text),
            "username": username,
            "password": password,
            "decision": "allow",
        },
    )


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def code_flow(http: httpx.AsyncClient, client_id: str, username: str) -> tuple[dict[str, Any], str]:
    """Sign in on the consent page and exchange the code: the token response and the code used."""
    verifier, challenge = pkce()
    params = redirect_params(await login(http, client_id, challenge, username))
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return response.json(), params["code"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

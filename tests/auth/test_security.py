"""Attacks on the authorization server and the resource side; each must get the right 4xx, never a 500."""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.main import create_app
from app.settings import Settings
from auth import crypto
from tests.auth import support
from tests.conftest import serve, settings_for


@dataclass
class World:
    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings
    department: str
    system: dict[str, Any]  # approved confidential client
    mobile: dict[str, Any]  # approved public client
    username: str


@pytest.fixture
async def world(
    reference_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    settings = settings_for(reference_database, credential_cache_seconds=0)
    code = await support.department(settings, capsys)
    system = await support.client(settings, capsys, code)
    mobile = await support.client(settings, capsys, code, public=True)
    username = await support.user(settings, capsys, monkeypatch, code)
    app = create_app(settings)
    async with serve(app) as http:
        yield World(app, http, settings, code, system, mobile, username)


def _error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    description: str = body["error_description"]
    return description


async def test_wrong_secret_and_unknown_client(world: World) -> None:
    wrong = await support.client_credentials(world.http, world.system["client_id"], "pdp_cs_wrong")
    assert _error(wrong, 401, "invalid_client") == "unknown client or wrong secret"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    unknown = await support.client_credentials(world.http, "pdp_nobody", world.system["client_secret"])
    assert _error(unknown, 401, "invalid_client") == "unknown client or wrong secret"
    in_body = await world.http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": world.system["client_id"]}
    )
    _error(in_body, 401, "invalid_client")


async def test_malformed_requests_get_oauth_errors(world: World) -> None:
    json_body = await world.http.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert "x-www-form-urlencoded" in _error(json_body, 400, "invalid_request")
    repeated = await world.http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "repeated" in _error(repeated, 400, "invalid_request")
    bad_basic = await world.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic %%%"}
    )
    _error(bad_basic, 401, "invalid_client")
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"):
        response = await world.http.post("/oauth/token", data={"grant_type": grant}, auth=("a", "b"))
        _error(response, 400, "unsupported_grant_type")
    register = await world.http.post("/oauth/register", content=b"[1]", headers=support.bearer("x"))
    _error(register, 400, "invalid_client_metadata")


async def test_public_clients_cannot_use_client_credentials_or_secrets(world: World) -> None:
    response = await world.http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": world.mobile["client_id"]}
    )
    _error(response, 400, "unauthorized_client")
    with_secret = await support.client_credentials(world.http, world.mobile["client_id"], "pdp_cs_guess")
    _error(with_secret, 401, "invalid_client")


async def test_wrong_redirect_uri_is_never_followed(world: World) -> None:
    _, challenge = support.pkce()
    params = support.authorize_params(
        world.mobile["client_id"], challenge, redirect_uri="https://evil.example/cb"
    )
    page = await world.http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "redirect_uri is not registered" in page.text
    # A code issued for the registered URI cannot be exchanged with another one.
    verifier, challenge = support.pkce()
    code = support.redirect_params(
        await support.login(world.http, world.mobile["client_id"], challenge, world.username)
    )["code"]
    exchange = await world.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "vn.gov.danso.app:/other",
            "client_id": world.mobile["client_id"],
            "code_verifier": verifier,
        },
    )
    assert "redirect_uri" in _error(exchange, 400, "invalid_grant")


async def test_authorization_request_errors_go_back_to_the_client(world: World) -> None:
    plain = support.authorize_params(world.mobile["client_id"], "x" * 43, code_challenge_method="plain")
    response = await world.http.get("/oauth/authorize", params=plain)
    params = support.redirect_params(response)
    assert params["error"] == "invalid_request"
    assert params["state"] == "trang-thai-42"
    escalate = support.authorize_params(world.mobile["client_id"], support.pkce()[1], scope="admin:clients")
    assert support.redirect_params(await world.http.get("/oauth/authorize", params=escalate))["error"] == (
        "invalid_scope"
    )
    implicit = support.authorize_params(world.mobile["client_id"], support.pkce()[1], response_type="token")
    assert support.redirect_params(await world.http.get("/oauth/authorize", params=implicit))["error"] == (
        "unsupported_response_type"
    )


async def test_wrong_password_and_tampered_form(world: World) -> None:
    _, challenge = support.pkce()
    wrong = await support.login(
        world.http, world.mobile["client_id"], challenge, world.username, "sai-mat-khau"
    )
    assert wrong.status_code == 401
    assert "Wrong username or password" in wrong.text
    assert 'role="alert"' in wrong.text
    nobody = await support.login(world.http, world.mobile["client_id"], challenge, "khong-ton-tai")
    assert nobody.status_code == 401
    page = await world.http.get(
        "/oauth/authorize", params=support.authorize_params(world.mobile["client_id"], challenge)
    )
    sealed = support.form_request_field(page.text)
    payload, _, mac = sealed.rpartition(".")
    data = orjson.loads(base64.urlsafe_b64decode(payload))
    data["p"]["scope"] = "admin:clients"
    forged = base64.urlsafe_b64encode(orjson.dumps(data)).decode() + "." + mac
    tampered = await world.http.post(
        "/oauth/authorize",
        data={
            "request": forged,
            "username": world.username,
            "password": support.PASSWORD,
            "decision": "allow",
        },
    )
    assert tampered.status_code == 400
    assert "location" not in tampered.headers
    denied = await world.http.post(
        "/oauth/authorize",
        data={
            "request": sealed,
            "username": world.username,
            "password": support.PASSWORD,
            "decision": "deny",
        },
    )
    assert support.redirect_params(denied)["error"] == "access_denied"


async def test_pkce_mismatch_and_missing_verifier(world: World) -> None:
    _, challenge = support.pkce()
    code = support.redirect_params(
        await support.login(world.http, world.mobile["client_id"], challenge, world.username)
    )["code"]
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": support.REDIRECT_URI,
        "client_id": world.mobile["client_id"],
    }
    missing = await world.http.post("/oauth/token", data=base)
    assert "code_verifier" in _error(missing, 400, "invalid_request")
    other_verifier, _ = support.pkce()
    mismatch = await world.http.post("/oauth/token", data={**base, "code_verifier": other_verifier})
    assert "PKCE" in _error(mismatch, 400, "invalid_grant")


async def test_replayed_code_is_refused_and_revokes_its_tokens(world: World) -> None:
    verifier, challenge = support.pkce()
    code = support.redirect_params(
        await support.login(world.http, world.mobile["client_id"], challenge, world.username)
    )["code"]
    assert code.startswith("pdp_ac_")
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": support.REDIRECT_URI,
        "client_id": world.mobile["client_id"],
        "code_verifier": verifier,
    }
    first = await world.http.post("/oauth/token", data=exchange)
    assert first.status_code == 200
    token = first.json()["access_token"]
    assert (await world.http.get("/v1/geographies", headers=support.bearer(token))).status_code == 200
    replay = await world.http.post("/oauth/token", data=exchange)
    assert "already used" in _error(replay, 400, "invalid_grant")
    after = await world.http.get("/v1/geographies", headers=support.bearer(token))
    assert after.status_code == 401
    refresh = await world.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": world.mobile["client_id"],
        },
    )
    _error(refresh, 400, "invalid_grant")


async def _claims(world: World, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": world.settings.issuer,
        "aud": world.settings.jwt_audience,
        "sub": world.system["client_id"],
        "client_id": world.system["client_id"],
        "department": world.department,
        "scope": "data:read",
        "jti": "forged-" + support.unique(""),
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


async def test_expired_forged_and_foreign_tokens_are_refused(world: World) -> None:
    codec = world.app.state.access.codec
    real = await support.access_token(world.http, world.system)
    header, payload, signature = real.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))

    async def refused(token: str) -> str:
        response = await world.http.get("/v1/geographies", headers=support.bearer(token))
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        detail: str = response.json()["detail"]
        return detail

    # A well-signed token whose jti was never issued (signed with our key, so only the store knows).
    assert await refused(await codec.sign(await _claims(world))) == "the token is not known to this portal"
    expired = await _claims(world, jti=claims["jti"], iat=int(time.time()) - 3600, exp=int(time.time()) - 600)
    assert await refused(await codec.sign(expired)) == "the token has expired"
    wrong_audience = await codec.sign(await _claims(world, jti=claims["jti"], aud="another-api"))
    assert "aud" in await refused(wrong_audience)
    wrong_issuer = await codec.sign(await _claims(world, jti=claims["jti"], iss="https://evil.example"))
    assert "iss" in await refused(wrong_issuer)
    escalated = _b64({**claims, "scope": "data:read:internal admin:clients"})
    assert await refused(f"{header}.{escalated}.{signature}") == "the token signature is invalid"
    unsigned = _b64(
        {"alg": "none", "typ": "at+jwt", "kid": orjson.loads(base64.urlsafe_b64decode(header + "=="))["kid"]}
    )
    assert "ES256" in await refused(f"{unsigned}.{payload}.")
    hs256 = _b64({"alg": "HS256", "typ": "at+jwt", "kid": "x"})
    mac = hmac.new(b"guess", f"{hs256}.{payload}".encode(), "sha256").digest()
    assert "ES256" in await refused(
        f"{hs256}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    )
    assert await refused("not-a-jwt") == "the token is not a JWS compact serialization"
    basic = await world.http.get("/v1/geographies", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    # The real token still works: nothing above was cached against it.
    assert (await world.http.get("/v1/geographies", headers=support.bearer(real))).status_code == 200


async def test_scope_escalation_is_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    asked = await support.client_credentials(
        world.http, world.system["client_id"], world.system["client_secret"], "data:read admin:clients"
    )
    assert "admin:clients" in _error(asked, 400, "invalid_scope")
    unknown = await support.client_credentials(
        world.http, world.system["client_id"], world.system["client_secret"], "everything"
    )
    _error(unknown, 400, "invalid_scope")
    token = await support.access_token(world.http, world.system, "data:read")
    admin = await world.http.get("/v1/admin/clients", headers=support.bearer(token))
    assert admin.status_code == 403
    assert admin.json()["code"] == "insufficient-scope"
    assert admin.json()["required_scope"] == "admin:clients"
    anonymous = await world.http.get("/v1/admin/usage")
    assert anonymous.status_code == 403
    assert anonymous.json()["required_scope"] == "admin:usage"
    iat = (await support.cli(["departments", "token", world.department], world.settings, capsys))[
        "initial_access_token"
    ]
    register = await world.http.post(
        "/oauth/register",
        json={"client_name": "tham lam", "scope": "data:read data:read:internal"},
        headers=support.bearer(iat),
    )
    assert "an admin grants the rest" in _error(register, 400, "invalid_client_metadata")
    no_token = await world.http.post("/oauth/register", json={"client_name": "x"})
    _error(no_token, 401, "invalid_token")
    bad_uri = await world.http.post(
        "/oauth/register",
        json={
            "client_name": "x",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://evil.example/cb"],
        },
        headers=support.bearer(iat),
    )
    _error(bad_uri, 400, "invalid_redirect_uri")


async def test_suspended_and_pending_clients(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    token = await support.access_token(world.http, world.system)
    key = await support.cli(["keys", "create", "--client", world.system["client_id"]], world.settings, capsys)
    assert (await world.http.get("/v1/geographies", headers={"X-API-Key": key["api_key"]})).status_code == 200
    await support.cli(["clients", "suspend", world.system["client_id"]], world.settings, capsys)
    response = await world.http.get("/v1/geographies", headers=support.bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "the client is suspended"
    with_key = await world.http.get("/v1/geographies", headers={"X-API-Key": key["api_key"]})
    assert with_key.json()["detail"] == "the client of this API key is suspended"
    again = await support.client_credentials(
        world.http, world.system["client_id"], world.system["client_secret"]
    )
    assert _error(again, 401, "invalid_client") == "the client is suspended"
    pending = await support.client(world.settings, capsys, world.department, approve=False)
    refused = await support.client_credentials(world.http, pending["client_id"], pending["client_secret"])
    assert "not approved" in _error(refused, 401, "invalid_client")
    pending_app = await support.client(world.settings, capsys, world.department, public=True, approve=False)
    page = await world.http.get(
        "/oauth/authorize", params=support.authorize_params(pending_app["client_id"], support.pkce()[1])
    )
    assert page.status_code == 400
    assert "pending" in page.text


async def test_users_of_another_department_cannot_authorise(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = await support.department(world.settings, capsys, "Công an tỉnh")
    outsider = await support.user(world.settings, capsys, monkeypatch, other)
    response = await support.login(world.http, world.mobile["client_id"], support.pkce()[1], outsider)
    assert response.status_code == 403
    assert "does not belong" in response.text


def test_secret_checks_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module auth.crypto calls
    hasher = crypto.SecretHasher("a-secret")
    stored = hasher.hash("pdp_cs_right")
    assert hasher.matches("pdp_cs_right", stored)
    assert not hasher.matches("pdp_cs_wrong", stored)
    assert not hasher.matches("pdp_cs_right", None)  # unknown client: still one comparison
    assert len(calls) == 3
    password = crypto.hash_password("mot-mat-khau-dai")
    assert crypto.verify_password("mot-mat-khau-dai", password)
    assert not crypto.verify_password("sai", password)
    assert not crypto.verify_password("sai", None)
    assert len(calls) == 6
    assert password.startswith("scrypt$32768$8$1$")


async def test_no_secret_in_logs_responses_or_database(
    world: World, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens, code = await support.code_flow(world.http, world.mobile["client_id"], world.username)
    key = await support.cli(["keys", "create", "--client", world.system["client_id"]], world.settings, capsys)
    access = await support.access_token(world.http, world.system)
    secrets = [world.system["client_secret"], tokens["refresh_token"], code, key["api_key"], support.PASSWORD]
    admin = await support.client(world.settings, capsys, world.department, scopes="admin:clients")
    admin_token = await support.access_token(world.http, admin)
    listings = [
        await world.http.get("/v1/admin/clients", headers=support.bearer(admin_token)),
        await world.http.get("/v1/admin/keys", headers=support.bearer(admin_token)),
        await world.http.post(
            "/oauth/introspect",
            data={"token": access},
            auth=(world.system["client_id"], world.system["client_secret"]),
        ),
    ]
    for response in listings:
        assert response.status_code == 200
        for secret in secrets:
            assert secret not in response.text
        assert "secret_hash" not in response.text
        assert "key_hash" not in response.text
    logged = caplog.text + capsys.readouterr().err
    for secret in [*secrets, access]:
        assert secret not in logged
    async with world.app.state.sessions() as session:
        tables = [
            "oauth_client",
            "oauth_token",
            "authorization_code",
            "api_key",
            "portal_user",
            "signing_key",
        ]
        dump = ""
        for table in tables:
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            dump += repr(rows)
    for secret in secrets:
        assert secret not in dump
    assert world.settings.signing_secret.get_secret_value() not in dump

"""The README's access walk-through, end to end: registration, approval, tokens, PKCE, revocation, API keys."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from auth.principal import Tier
from tests.auth import support
from tests.conftest import serve, settings_for


async def test_a_department_registers_gets_approved_and_reads_with_a_token(
    reference_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(reference_database, credential_cache_seconds=0)
    code = await support.department(settings, capsys, "Sở Lao động - Thương binh và Xã hội")
    iat = (await support.cli(["departments", "token", code], settings, capsys))["initial_access_token"]
    assert iat.startswith("pdp_iat_")
    async with serve(create_app(settings)) as http:
        registered = await http.post(
            "/oauth/register",
            json={"client_name": "Hệ thống an sinh", "token_endpoint_auth_method": "client_secret_basic"},
            headers=support.bearer(iat),
        )
        assert registered.status_code == 201, registered.text
        body = registered.json()
        assert body["status"] == "pending"
        assert body["department"] == code
        assert body["grant_types"] == ["client_credentials"]
        assert body["scope"] == "data:read data:read:commune"
        client_id, secret = body["client_id"], body["client_secret"]
        assert secret.startswith("pdp_cs_")

        pending = await support.client_credentials(http, client_id, secret)
        assert pending.status_code == 401
        assert pending.json()["error"] == "invalid_client"
        assert "not approved" in pending.json()["error_description"]

        approved = await support.cli(["clients", "approve", client_id], settings, capsys)
        assert approved["status"] == "approved"

        issued = await support.client_credentials(http, client_id, secret)
        assert issued.status_code == 200, issued.text
        token = issued.json()
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "data:read data:read:commune"
        assert token["expires_in"] == settings.access_token_seconds
        assert "refresh_token" not in token  # RFC 6749 4.4.3
        assert issued.headers["cache-control"] == "no-store"

        areas = await http.get(
            "/v1/areas",
            params={"geography": "vn-2025-07", "level": "province"},
            headers=support.bearer(token["access_token"]),
        )
        assert areas.status_code == 200
        assert areas.json()["total"] == 34
        assert areas.headers["x-portal-tier"] == "department"
        assert int(areas.headers["ratelimit-limit"]) == 100000

        me = (await http.get("/v1/limits", headers=support.bearer(token["access_token"]))).json()["caller"]
        assert me == {
            "tier": "department",
            "via": "token",
            "client_id": client_id,
            "department": code,
            "scopes": ["data:read", "data:read:commune"],
        }
        anonymous = await http.get("/v1/areas", params={"geography": "vn-2025-07", "level": "province"})
        assert anonymous.headers["x-portal-tier"] == "public"

        revoked = await http.post(
            "/oauth/revoke", data={"token": token["access_token"]}, auth=(client_id, secret)
        )
        assert revoked.status_code == 200
        after = await http.get("/v1/geographies", headers=support.bearer(token["access_token"]))
        assert after.status_code == 401
        assert after.headers["content-type"] == "application/problem+json"
        assert after.json()["detail"] == "the token has been revoked"
        assert after.headers["www-authenticate"].startswith('Bearer realm="portal", error="invalid_token"')


async def test_a_public_app_completes_the_pkce_flow_and_refresh_rotates(
    reference_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(reference_database)
    code = await support.department(settings, capsys)
    app_client = await support.client(settings, capsys, code, public=True)
    assert "client_secret" not in app_client
    username = await support.user(settings, capsys, monkeypatch, code)
    app = create_app(settings)
    async with serve(app) as http:
        page = await http.get(
            "/oauth/authorize", params=support.authorize_params(app_client["client_id"], support.pkce()[1])
        )
        assert page.status_code == 200
        assert '<html lang="vi">' in page.text
        assert "Đăng nhập" in page.text
        assert "Sign in" in page.text
        assert '<label for="password">' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

        tokens, _ = await support.code_flow(http, app_client["client_id"], username)
        assert tokens["refresh_token"].startswith("pdp_rt_")
        areas = await http.get(
            "/v1/areas", params={"geography": "vn-2025-07"}, headers=support.bearer(tokens["access_token"])
        )
        assert areas.status_code == 200
        assert areas.headers["x-portal-tier"] == Tier.DEPARTMENT.value

        introspected = await http.post(
            "/oauth/introspect", data={"token": tokens["access_token"], "client_id": app_client["client_id"]}
        )
        assert introspected.json()["active"] is True
        assert introspected.json()["sub"] == f"user:{username}"
        assert introspected.json()["department"] == code

        refreshed = await http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": app_client["client_id"],
                "scope": "data:read",
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        rotated = refreshed.json()
        assert rotated["scope"] == "data:read"
        assert rotated["refresh_token"] != tokens["refresh_token"]

        # The old refresh token again: a copy is in use, so the whole grant ends.
        reused = await http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": app_client["client_id"],
            },
        )
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"
        app.state.access.credentials.invalidate()  # what another process sees after its cache period
        denied = await http.get("/v1/geographies", headers=support.bearer(rotated["access_token"]))
        assert denied.status_code == 401
        assert denied.json()["detail"] == "the token has been revoked"


async def test_an_api_key_works_and_is_revocable(
    reference_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(reference_database, credential_cache_seconds=0)
    code = await support.department(settings, capsys)
    system = await support.client(settings, capsys, code)
    key = await support.cli(
        ["keys", "create", "--client", system["client_id"], "--name", "ETL"], settings, capsys
    )
    assert key["api_key"].startswith("pdp_key_")
    assert key["prefix"] == key["api_key"][:12]
    app = create_app(settings)
    async with serve(app) as http:
        ok = await http.get("/v1/limits", headers={"X-API-Key": key["api_key"]})
        assert ok.status_code == 200
        assert ok.json()["caller"]["via"] == "api_key"
        assert ok.json()["caller"]["client_id"] == system["client_id"]
        assert ok.headers["x-portal-tier"] == "department"
        await app.state.access.usage.flush(app.state.sessions)
        listed = await support.cli(["keys", "list", "--client", system["client_id"]], settings, capsys)
        assert listed[0]["last_used_at"] is not None
        assert "api_key" not in listed[0]

        await support.cli(["keys", "revoke", str(key["id"])], settings, capsys)
        refused = await http.get("/v1/limits", headers={"X-API-Key": key["api_key"]})
        assert refused.status_code == 401
        assert refused.json()["detail"] == "the API key has been revoked"
        garbage = await http.get("/v1/limits", headers={"X-API-Key": "pdp_key_not-a-key"})
        assert garbage.status_code == 401
        assert garbage.json()["detail"] == "the API key is not valid"


async def test_discovery_documents(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == "http://127.0.0.1:8000"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["grant_types_supported"] == ["authorization_code", "client_credentials", "refresh_token"]
    assert "password" not in metadata["grant_types_supported"]
    assert metadata["token_endpoint"].endswith("/oauth/token")
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys
    assert all(k["kty"] == "EC" and k["alg"] == "ES256" and "d" not in k for k in keys)


async def test_signing_key_rotation_keeps_issued_tokens_valid(
    reference_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    import orjson

    settings = settings_for(reference_database)
    code = await support.department(settings, capsys)
    system = await support.client(settings, capsys, code)
    app = create_app(settings)
    async with serve(app) as http:
        before = await support.access_token(http, system)
        new_kid = await app.state.access.codec.keys.rotate()
        after = await support.access_token(http, system)

        def kid(token: str) -> str:
            head = token.split(".")[0]
            return str(orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])

        assert kid(after) == new_kid
        assert kid(before) != new_kid
        published = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert {kid(before), new_kid} <= published
        for token in (before, after):
            assert (await http.get("/v1/geographies", headers=support.bearer(token))).status_code == 200

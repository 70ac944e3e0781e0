"""The OAuth2 authorization server: client authentication, grants, revocation, introspection.

Authlib's `AuthorizationServer` drives grants through synchronous hooks (it cannot await), which
would mean a second, sync engine and a thread per token request. Instead the grants are written
here as async code over the request's session, with Authlib's primitives where they matter:
`authlib.oauth2.rfc7636` for the PKCE S256 transform and joserfc (Authlib's JOSE library) for the
JWTs (see auth.tokens). Supported: client_credentials (confidential clients), authorization_code
with PKCE S256 (required for every client, as OAuth 2.1 does) and refresh_token with rotation; a
reused refresh token or replayed code revokes every token of its grant (RFC 6819 5.2.2.3, RFC 6749
4.1.2). No implicit or password grant. Errors are RFC 6749 JSON bodies (auth.errors.OAuthError).
"""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from app.models import AuthorizationCode, Department, OAuthClient, OAuthToken, PortalUser
from app.settings import Settings
from auth import crypto
from auth.errors import OAuthError
from auth.repository import AccessRepository
from auth.scopes import format_scopes, parse_scopes, tier_for_scopes, unknown_scopes
from auth.tokens import AccessTokenCodec, InvalidAccessToken

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # base64url of a SHA-256 digest


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated `/oauth/authorize` request."""

    client: OAuthClient
    department: Department
    redirect_uri: str
    scopes: frozenset[str]
    state: str | None
    code_challenge: str

    def as_params(self) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client.id,
            "redirect_uri": self.redirect_uri,
            "scope": format_scopes(self.scopes),
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            params["state"] = self.state
        return params


class AuthorizeError(Exception):
    """An authorization request error; `redirect` says whether it may go back to the client (4.1.2.1)."""

    def __init__(self, error: str, description: str, redirect: bool) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect = redirect


class OAuthServer:
    def __init__(self, repository: AccessRepository, settings: Settings, codec: AccessTokenCodec) -> None:
        self.repository = repository
        self.settings = settings
        self.codec = codec
        self.hasher = crypto.SecretHasher(settings.signing_secret.get_secret_value())

    # ---- client authentication (RFC 6749 2.3) -------------------------------------------------------

    async def authenticate_client(
        self, form: Mapping[str, str], authorization: str | None
    ) -> tuple[OAuthClient, Department]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                basic_id, _, basic_secret = decoded.partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "the Basic credentials are not valid base64") from None
            if client_id and unquote(basic_id) != client_id:
                raise OAuthError(
                    "invalid_request", "client_id in the body differs from the Basic credentials"
                )
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        if not client_id:
            raise OAuthError(
                "invalid_client", "authenticate the client (HTTP Basic or client_id in the body)"
            )
        client = await self.repository.get_client(client_id)
        if client is None or not client.confidential:
            # Compare against nothing anyway: an unknown client costs the same time as a wrong secret.
            self.hasher.matches(secret or "", None)
            if client is None:
                raise OAuthError("invalid_client", "unknown client or wrong secret")
            if secret:
                raise OAuthError("invalid_client", "a public client has no secret; send only client_id")
        elif not secret or not self.hasher.matches(secret, client.secret_hash):
            raise OAuthError("invalid_client", "unknown client or wrong secret")
        if client.status != "approved":
            raise OAuthError(
                "invalid_client",
                f"the client is {client.status}"
                + (": the population office has not approved it yet" if client.status == "pending" else ""),
            )
        department = await self.repository.get_department(client.department_id)
        assert department is not None
        return client, department

    # ---- the token endpoint ------------------------------------------------------------------------

    async def token(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type not in ("client_credentials", "authorization_code", "refresh_token"):
            if grant_type in ("password", "implicit"):
                raise OAuthError("unsupported_grant_type", f"the {grant_type} grant is not offered")
            raise OAuthError(
                "unsupported_grant_type" if grant_type else "invalid_request",
                "grant_type must be client_credentials, authorization_code or refresh_token",
            )
        client, department = await self.authenticate_client(form, authorization)
        if grant_type not in client.grant_types.split():
            raise OAuthError(
                "unauthorized_client", f"this client is not registered for the {grant_type} grant"
            )
        if grant_type == "client_credentials":
            if not client.confidential:
                raise OAuthError("unauthorized_client", "client_credentials needs a confidential client")
            scopes = self._granted(form.get("scope"), parse_scopes(client.scopes))
            return await self.issue(client, department, scopes, None, uuid.uuid4().hex, refresh=False)
        if grant_type == "authorization_code":
            return await self._authorization_code(client, department, form)
        return await self._refresh(client, department, form)

    def _granted(self, requested: str | None, allowed: frozenset[str]) -> frozenset[str]:
        if requested is None or not requested.strip():
            return allowed
        wanted = parse_scopes(requested)
        if unknown := unknown_scopes(wanted):
            raise OAuthError("invalid_scope", f"unknown scopes: {' '.join(unknown)}")
        if not wanted <= allowed:
            raise OAuthError(
                "invalid_scope", f"not granted to this client: {format_scopes(wanted - allowed)}"
            )
        return wanted

    async def _authorization_code(
        self, client: OAuthClient, department: Department, form: Mapping[str, str]
    ) -> dict[str, Any]:
        code, verifier, redirect_uri = form.get("code"), form.get("code_verifier"), form.get("redirect_uri")
        if not code or not redirect_uri:
            raise OAuthError("invalid_request", "code and redirect_uri are required")
        if not verifier or not _VERIFIER.match(verifier):
            raise OAuthError("invalid_request", "code_verifier (PKCE, 43-128 characters) is required")
        code_hash = self.hasher.hash(code)
        stored = await self.repository.get_code(code_hash)
        now = datetime.now(UTC)
        if stored is None or stored.client_id != client.id:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if not await self.repository.redeem_code(code_hash, now):
            await self.repository.revoke_grant(stored.grant_id, now)
            raise OAuthError(
                "invalid_grant", "the authorization code was already used; tokens issued with it are revoked"
            )
        if stored.expires_at <= now:
            raise OAuthError("invalid_grant", "the authorization code has expired")
        if redirect_uri != stored.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        if not hmac.compare_digest(create_s256_code_challenge(verifier), stored.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
        user = await self._active_user(stored.user_id)
        return await self.issue(
            client, department, parse_scopes(stored.scope), user, stored.grant_id, refresh=True
        )

    async def _refresh(
        self, client: OAuthClient, department: Department, form: Mapping[str, str]
    ) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required")
        token = await self.repository.get_token(self.hasher.hash(presented))
        now = datetime.now(UTC)
        if token is None or token.kind != "refresh" or token.client_id != client.id:
            raise OAuthError("invalid_grant", "unknown refresh token")
        if token.revoked_at is not None:
            raise OAuthError("invalid_grant", "the refresh token was revoked")
        if token.expires_at <= now:
            raise OAuthError("invalid_grant", "the refresh token has expired")
        if not await self.repository.rotate_refresh_token(token.id, now):
            # A rotated token presented again means it was copied: end the whole grant.
            await self.repository.revoke_grant(token.grant_id, now)
            raise OAuthError("invalid_grant", "the refresh token was already used; the grant is revoked")
        scopes = self._granted(form.get("scope"), parse_scopes(token.scope))
        user = await self._active_user(token.user_id) if token.user_id is not None else None
        return await self.issue(client, department, scopes, user, token.grant_id, refresh=True)

    async def _active_user(self, user_id: int) -> PortalUser:
        user = await self.repository.get_user(user_id)
        if user is None or not user.active:
            raise OAuthError("invalid_grant", "the user who authorised this grant is no longer active")
        return user

    async def issue(
        self,
        client: OAuthClient,
        department: Department,
        scopes: frozenset[str],
        user: PortalUser | None,
        grant_id: str,
        refresh: bool,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        lifetime = self.settings.access_token_seconds
        jti = uuid.uuid4().hex
        scope = format_scopes(scopes)
        claims = {
            "iss": self.settings.issuer,
            "aud": self.settings.jwt_audience,
            "sub": f"user:{user.username}" if user else client.id,
            "client_id": client.id,
            "department": department.code,
            "scope": scope,
            "tier": tier_for_scopes(scopes).value,
            "jti": jti,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + lifetime,
        }
        access_token = await self.codec.sign(claims)
        user_id = user.id if user else None
        await self.repository.add(
            OAuthToken(
                id=jti,
                kind="access",
                grant_id=grant_id,
                client_id=client.id,
                user_id=user_id,
                scope=scope,
                issued_at=now,
                expires_at=now + timedelta(seconds=lifetime),
            )
        )
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }
        if refresh:
            refresh_token = crypto.new_secret(crypto.REFRESH_TOKEN)
            await self.repository.add(
                OAuthToken(
                    id=self.hasher.hash(refresh_token),
                    kind="refresh",
                    grant_id=grant_id,
                    client_id=client.id,
                    user_id=user_id,
                    scope=scope,
                    issued_at=now,
                    expires_at=now + timedelta(seconds=self.settings.refresh_token_seconds),
                )
            )
            body["refresh_token"] = refresh_token
        return body

    # ---- revocation (RFC 7009) and introspection (RFC 7662) ------------------------------------------

    async def _find(self, presented: str) -> tuple[OAuthToken, dict[str, Any] | None] | None:
        if presented.startswith(crypto.REFRESH_TOKEN):
            token = await self.repository.get_token(self.hasher.hash(presented))
            return (token, None) if token is not None and token.kind == "refresh" else None
        try:
            claims = await self.codec.verify(presented)
        except InvalidAccessToken:
            return None
        token = await self.repository.get_token(str(claims["jti"]))
        return (token, claims) if token is not None else None

    async def revoke(self, form: Mapping[str, str], authorization: str | None) -> None:
        client, _ = await self.authenticate_client(form, authorization)
        presented = form.get("token")
        if not presented:
            raise OAuthError("invalid_request", "token is required")
        found = await self._find(presented)
        # Unknown tokens and tokens of other clients are answered alike (200), revealing nothing.
        if found is None or found[0].client_id != client.id:
            return
        token, _ = found
        now = datetime.now(UTC)
        if token.kind == "refresh":
            await self.repository.revoke_grant(token.grant_id, now)  # RFC 7009 2.1: and its access tokens
        else:
            await self.repository.revoke_token(token.id, now)

    async def introspect(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        client, _ = await self.authenticate_client(form, authorization)
        presented = form.get("token")
        if not presented:
            raise OAuthError("invalid_request", "token is required")
        found = await self._find(presented)
        if found is None:
            return {"active": False}
        token, claims = found
        may_see_all = "admin:clients" in parse_scopes(client.scopes)
        now = datetime.now(UTC)
        standing = await self.repository.token_standing(token.id)
        if (
            standing is None
            or (token.client_id != client.id and not may_see_all)
            or token.revoked_at is not None
            or token.rotated_at is not None
            or token.expires_at <= now
            or standing[1].status != "approved"
        ):
            return {"active": False}
        _, owner, department = standing
        return {
            "active": True,
            "scope": token.scope,
            "client_id": owner.id,
            "token_type": "Bearer" if token.kind == "access" else "refresh_token",
            "exp": int(token.expires_at.timestamp()),
            "iat": int(token.issued_at.timestamp()),
            "sub": claims["sub"] if claims else None,
            "aud": self.settings.jwt_audience,
            "iss": self.settings.issuer,
            "department": department.code,
            "tier": tier_for_scopes(parse_scopes(token.scope)).value,
        }

    # ---- authorization endpoint (RFC 6749 4.1, RFC 7636) -------------------------------------------

    async def authorization_request(self, params: Mapping[str, str]) -> AuthorizationRequest:
        client = await self.repository.get_client(params.get("client_id", ""))
        if client is None:
            raise AuthorizeError("invalid_client", "unknown client_id", redirect=False)
        redirect_uri = params.get("redirect_uri", "")
        # Exact match only (no prefix or wildcard): the code must never reach an unregistered address.
        if redirect_uri not in client.redirect_uris.split():
            raise AuthorizeError(
                "invalid_request", "redirect_uri is not registered for this client", redirect=False
            )
        if client.status != "approved":
            raise AuthorizeError("unauthorized_client", f"the client is {client.status}", redirect=False)
        if params.get("response_type") != "code":
            raise AuthorizeError(
                "unsupported_response_type", "only response_type=code is offered", redirect=True
            )
        if "authorization_code" not in client.grant_types.split():
            raise AuthorizeError(
                "unauthorized_client", "this client is not registered for authorization_code", redirect=True
            )
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not _CHALLENGE.match(challenge):
            raise AuthorizeError(
                "invalid_request",
                "PKCE is required: code_challenge with code_challenge_method=S256",
                redirect=True,
            )
        try:
            scopes = self._granted(params.get("scope"), parse_scopes(client.scopes))
        except OAuthError as exc:
            raise AuthorizeError(exc.error, exc.description, redirect=True) from None
        department = await self.repository.get_department(client.department_id)
        assert department is not None
        return AuthorizationRequest(client, department, redirect_uri, scopes, params.get("state"), challenge)

    async def issue_code(self, request: AuthorizationRequest, user: PortalUser) -> str:
        code = crypto.new_secret(crypto.AUTHORIZATION_CODE)
        now = datetime.now(UTC)
        assert user.id is not None
        await self.repository.add(
            AuthorizationCode(
                code_hash=self.hasher.hash(code),
                client_id=request.client.id,
                user_id=user.id,
                redirect_uri=request.redirect_uri,
                scope=format_scopes(request.scopes),
                code_challenge=request.code_challenge,
                grant_id=uuid.uuid4().hex,
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.authorization_code_seconds),
            )
        )
        return code

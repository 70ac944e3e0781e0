"""The access registry: departments, users, clients (admin-created or RFC 7591), API keys, audit.

Services never commit: the caller's unit of work (a request's session, a CLI transaction) does, so an
admin action and its audit record are written together or not at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from app.errors import InvalidParameter
from app.models import ApiKey, AuditLog, Department, InitialAccessToken, OAuthClient, PortalUser
from app.settings import Settings
from auth import crypto
from auth.errors import Conflict, OAuthError, UnknownApiKey, UnknownClient, UnknownDepartment
from auth.principal import Principal, Tier
from auth.repository import AccessRepository
from auth.scopes import (
    DEFAULT_SCOPES,
    REGISTRABLE_SCOPES,
    format_scopes,
    parse_scopes,
    tier_for_scopes,
    unknown_scopes,
)

CLIENT_STATUSES = ("pending", "approved", "suspended")
CONFIDENTIAL_GRANTS = ("client_credentials",)
PUBLIC_GRANTS = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action, as the audit log names them."""

    name: str
    tier: Tier

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli", Tier.INTERNAL)

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(f"client:{principal.client_id}" if principal.client_id else "anonymous", principal.tier)


@dataclass(frozen=True)
class NewClient:
    client: OAuthClient
    department: Department
    secret: str | None  # shown once, for confidential clients


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    plain: str  # shown once


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI cannot be registered (RFC 6749 3.1.2, RFC 8252 for native apps), or None."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        return f"{uri}: a redirect URI must not have a fragment"
    if parts.scheme == "https" and parts.netloc:
        return None
    if parts.scheme == "http":
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        return None if loopback else f"{uri}: plain http is allowed only for loopback addresses"
    # A native app's private-use scheme must be a reversed domain name (RFC 8252 7.1).
    if parts.scheme and "." in parts.scheme and not parts.netloc:
        return None
    return f"{uri}: use https, a loopback http address or a reversed-domain scheme such as vn.gov.app:/cb"


class AccessService:
    def __init__(self, repository: AccessRepository, settings: Settings) -> None:
        self.repository = repository
        self.settings = settings
        self.hasher = crypto.SecretHasher(settings.signing_secret.get_secret_value())

    async def audit(self, actor: Actor, action: str, target: str = "", **detail: Any) -> None:
        await self.repository.add(
            AuditLog(
                at=datetime.now(UTC),
                actor=actor.name,
                action=action,
                target=target,
                tier=actor.tier.value,
                detail=orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode(),
            )
        )

    # ---- departments and users ---------------------------------------------------------------------

    async def department(self, code: str) -> Department:
        department = await self.repository.department_by_code(code)
        if department is None:
            raise UnknownDepartment(
                f"no department with code {code!r}; create it with `portal departments create`"
            )
        return department

    async def create_department(self, actor: Actor, code: str, name: str, contact: str | None) -> Department:
        if not code or not name:
            raise InvalidParameter("a department needs a code and a name")
        if await self.repository.department_by_code(code) is not None:
            raise Conflict(f"department {code!r} exists already")
        department = Department(code=code, name=name, contact=contact, created_at=datetime.now(UTC))
        await self.repository.add(department)
        await self.audit(actor, "department.create", code, name=name)
        return department

    async def issue_initial_access_token(self, actor: Actor, code: str) -> tuple[InitialAccessToken, str]:
        """A bearer token with which the department registers its clients (RFC 7591 section 3)."""
        department = await self.department(code)
        plain = crypto.new_secret(crypto.INITIAL_ACCESS_TOKEN)
        now = datetime.now(UTC)
        assert department.id is not None
        token = InitialAccessToken(
            department_id=department.id,
            token_hash=self.hasher.hash(plain),
            created_at=now,
            expires_at=now + timedelta(days=self.settings.initial_access_token_days),
        )
        await self.repository.add(token)
        await self.audit(
            actor, "department.initial_access_token", code, expires_at=token.expires_at.isoformat()
        )
        return token, plain

    async def create_user(self, actor: Actor, code: str, username: str, password_hash: str) -> PortalUser:
        department = await self.department(code)
        if await self.repository.user_by_username(username) is not None:
            raise Conflict(f"user {username!r} exists already")
        assert department.id is not None
        user = PortalUser(
            department_id=department.id,
            username=username,
            password_hash=password_hash,
            created_at=datetime.now(UTC),
        )
        await self.repository.add(user)
        await self.audit(actor, "user.create", username, department=code)
        return user

    # ---- clients -----------------------------------------------------------------------------------

    async def create_client(
        self,
        actor: Actor,
        department_code: str,
        name: str,
        confidential: bool,
        redirect_uris: Sequence[str] = (),
        scopes: str | None = None,
        via: str = "admin",
        grant_types: Sequence[str] | None = None,
    ) -> NewClient:
        department = await self.department(department_code)
        wanted = parse_scopes(scopes) if scopes else DEFAULT_SCOPES
        if unknown := unknown_scopes(wanted):
            raise InvalidParameter(f"unknown scopes {', '.join(unknown)}; see auth.scopes for the list")
        for uri in redirect_uris:
            if problem := redirect_uri_problem(uri):
                raise InvalidParameter(problem)
        grants = list(grant_types or (CONFIDENTIAL_GRANTS if confidential else PUBLIC_GRANTS))
        if not confidential and "client_credentials" in grants:
            raise InvalidParameter("a public client cannot use client_credentials: it cannot keep a secret")
        if "authorization_code" in grants and not redirect_uris:
            raise InvalidParameter("the authorization_code grant needs at least one redirect URI")
        secret = crypto.new_secret(crypto.CLIENT_SECRET) if confidential else None
        now = datetime.now(UTC)
        assert department.id is not None
        client = OAuthClient(
            id="pdp_" + crypto.new_id(12),
            department_id=department.id,
            name=name,
            confidential=confidential,
            secret_hash=self.hasher.hash(secret) if secret else None,
            redirect_uris=" ".join(redirect_uris),
            grant_types=" ".join(grants),
            scopes=format_scopes(wanted),
            status="pending",
            registered_via=via,
            created_at=now,
            status_changed_at=now,
        )
        await self.repository.add(client)
        await self.audit(
            actor,
            "client.create",
            client.id,
            department=department.code,
            name=name,
            confidential=confidential,
            scopes=client.scopes,
            via=via,
        )
        return NewClient(client, department, secret)

    async def register_client(self, initial_access_token: str | None, metadata: dict[str, Any]) -> NewClient:
        """RFC 7591 dynamic registration, authorised by a department's initial access token."""
        if not initial_access_token:
            raise OAuthError("invalid_token", "send the department's initial access token as a Bearer token")
        token = await self.repository.initial_access_token(self.hasher.hash(initial_access_token))
        now = datetime.now(UTC)
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise OAuthError("invalid_token", "the initial access token is unknown, expired or revoked")
        department = await self.repository.get_department(token.department_id)
        assert department is not None
        name = metadata.get("client_name")
        if not isinstance(name, str) or not name.strip():
            raise OAuthError("invalid_client_metadata", "client_name is required")
        uris = metadata.get("redirect_uris", [])
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise OAuthError("invalid_redirect_uri", "redirect_uris must be a list of strings")
        for uri in uris:
            if problem := redirect_uri_problem(uri):
                raise OAuthError("invalid_redirect_uri", problem)
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in ("client_secret_basic", "client_secret_post", "none"):
            raise OAuthError(
                "invalid_client_metadata", f"token_endpoint_auth_method {method!r} is not supported"
            )
        confidential = method != "none"
        default_grants = CONFIDENTIAL_GRANTS if confidential else PUBLIC_GRANTS
        grants = metadata.get("grant_types", list(default_grants))
        allowed = {"client_credentials", "authorization_code", "refresh_token"}
        if not isinstance(grants, list) or not grants or not set(grants) <= allowed:
            raise OAuthError(
                "invalid_client_metadata",
                "grant_types may hold client_credentials, authorization_code, refresh_token",
            )
        scope = metadata.get("scope")
        wanted = parse_scopes(scope) if isinstance(scope, str) and scope.strip() else DEFAULT_SCOPES
        if not wanted <= REGISTRABLE_SCOPES:
            raise OAuthError(
                "invalid_client_metadata",
                f"registration may ask only for {format_scopes(REGISTRABLE_SCOPES)}; an admin grants the rest",
            )
        try:
            return await self.create_client(
                Actor(f"registration:{department.code}", Tier.DEPARTMENT),
                department.code,
                name.strip(),
                confidential,
                uris,
                format_scopes(wanted),
                via="registration",
                grant_types=grants,
            )
        except InvalidParameter as exc:
            raise OAuthError("invalid_client_metadata", exc.detail) from None

    async def client(self, client_id: str) -> OAuthClient:
        client = await self.repository.get_client(client_id)
        if client is None:
            raise UnknownClient(f"no client {client_id!r}")
        return client

    async def list_clients(
        self, status: str | None, department_code: str | None
    ) -> list[tuple[OAuthClient, Department]]:
        department_id = (await self.department(department_code)).id if department_code else None
        departments = {d.id: d for d in await self.repository.list_departments()}
        clients = await self.repository.list_clients(status, department_id)
        return [(c, departments[c.department_id]) for c in clients]

    async def set_client_status(self, actor: Actor, client_id: str, status: str) -> OAuthClient:
        if status not in CLIENT_STATUSES:
            raise InvalidParameter(f"status must be one of {', '.join(CLIENT_STATUSES)}")
        client = await self.client(client_id)
        previous = client.status
        await self.repository.set_client_status(client_id, status, datetime.now(UTC))
        verb = {"approved": "approve", "suspended": "suspend", "pending": "reset"}[status]
        await self.audit(actor, f"client.{verb}", client_id, previous=previous)
        await self.repository.session.refresh(client)
        return client

    # ---- API keys ----------------------------------------------------------------------------------

    async def create_key(self, actor: Actor, client_id: str, name: str = "") -> NewApiKey:
        client = await self.client(client_id)
        if not client.confidential:
            raise InvalidParameter(
                "API keys are for department integrations (confidential clients), not apps"
            )
        plain = crypto.new_secret(crypto.API_KEY)
        key = ApiKey(
            client_id=client.id,
            key_hash=self.hasher.hash(plain),
            prefix=plain[: len(crypto.API_KEY) + 4],
            name=name,
            created_at=datetime.now(UTC),
        )
        await self.repository.add(key)
        await self.audit(actor, "api_key.create", str(key.id), client=client.id, prefix=key.prefix)
        return NewApiKey(key, plain)

    async def revoke_key(self, actor: Actor, key_id: int) -> ApiKey:
        key = await self.repository.get_key(key_id)
        if key is None:
            raise UnknownApiKey(f"no API key {key_id}")
        await self.repository.revoke_key(key_id, datetime.now(UTC))
        await self.audit(actor, "api_key.revoke", str(key_id), client=key.client_id)
        await self.repository.session.refresh(key)
        return key

    async def list_keys(self, client_id: str | None) -> Sequence[ApiKey]:
        if client_id is not None:
            await self.client(client_id)
        return await self.repository.list_keys(client_id)


def client_tier(client: OAuthClient) -> Tier:
    return tier_for_scopes(parse_scopes(client.scopes))

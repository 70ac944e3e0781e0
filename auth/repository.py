"""SQL of the access layer: departments, users, clients, codes, tokens, API keys, keys, usage, audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import (
    ApiKey,
    AuditLog,
    AuthorizationCode,
    Department,
    InitialAccessToken,
    OAuthClient,
    OAuthToken,
    PortalUser,
    SigningKey,
    UsageDaily,
)


class AccessRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: object) -> None:
        self.session.add(row)
        await self.session.flush()

    # ---- departments and users ---------------------------------------------------------------------

    async def department_by_code(self, code: str) -> Department | None:
        query = select(Department).where(col(Department.code) == code)
        return (await self.session.scalars(query)).first()

    async def get_department(self, department_id: int) -> Department | None:
        return await self.session.get(Department, department_id)

    async def list_departments(self) -> Sequence[Department]:
        return (await self.session.scalars(select(Department).order_by(col(Department.code)))).all()

    async def user_by_username(self, username: str) -> PortalUser | None:
        query = select(PortalUser).where(col(PortalUser.username) == username)
        return (await self.session.scalars(query)).first()

    async def get_user(self, user_id: int) -> PortalUser | None:
        return await self.session.get(PortalUser, user_id)

    # ---- clients -----------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClient | None:
        return await self.session.get(OAuthClient, client_id)

    async def list_clients(
        self, status: str | None = None, department_id: int | None = None
    ) -> Sequence[OAuthClient]:
        query = select(OAuthClient).order_by(col(OAuthClient.created_at), col(OAuthClient.id))
        if status is not None:
            query = query.where(col(OAuthClient.status) == status)
        if department_id is not None:
            query = query.where(col(OAuthClient.department_id) == department_id)
        return (await self.session.scalars(query)).all()

    async def set_client_status(self, client_id: str, status: str, at: datetime) -> None:
        await self.session.execute(
            update(OAuthClient)
            .where(col(OAuthClient.id) == client_id)
            .values(status=status, status_changed_at=at)
        )

    async def initial_access_token(self, token_hash: str) -> InitialAccessToken | None:
        query = select(InitialAccessToken).where(col(InitialAccessToken.token_hash) == token_hash)
        return (await self.session.scalars(query)).first()

    # ---- authorization codes and tokens -------------------------------------------------------------

    async def get_code(self, code_hash: str) -> AuthorizationCode | None:
        return await self.session.get(AuthorizationCode, code_hash)

    async def redeem_code(self, code_hash: str, at: datetime) -> bool:
        """Mark a code used; False when it already was (a replay), decided by one atomic UPDATE."""
        result = await self.session.execute(
            update(AuthorizationCode)
            .where(col(AuthorizationCode.code_hash) == code_hash, col(AuthorizationCode.used_at).is_(None))
            .values(used_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def get_token(self, token_id: str) -> OAuthToken | None:
        return await self.session.get(OAuthToken, token_id)

    async def rotate_refresh_token(self, token_id: str, at: datetime) -> bool:
        """Retire a refresh token on use; False when it was already used or revoked."""
        result = await self.session.execute(
            update(OAuthToken)
            .where(
                col(OAuthToken.id) == token_id,
                col(OAuthToken.kind) == "refresh",
                col(OAuthToken.rotated_at).is_(None),
                col(OAuthToken.revoked_at).is_(None),
            )
            .values(rotated_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_token(self, token_id: str, at: datetime) -> None:
        await self.session.execute(
            update(OAuthToken)
            .where(col(OAuthToken.id) == token_id, col(OAuthToken.revoked_at).is_(None))
            .values(revoked_at=at)
        )

    async def revoke_grant(self, grant_id: str, at: datetime) -> None:
        await self.session.execute(
            update(OAuthToken)
            .where(col(OAuthToken.grant_id) == grant_id, col(OAuthToken.revoked_at).is_(None))
            .values(revoked_at=at)
        )

    async def token_standing(self, token_id: str) -> tuple[OAuthToken, OAuthClient, Department] | None:
        """The token with its client and department: what a request needs to trust an access token."""
        query = (
            select(OAuthToken, OAuthClient, Department)
            .join(OAuthClient, col(OAuthClient.id) == col(OAuthToken.client_id))
            .join(Department, col(Department.id) == col(OAuthClient.department_id))
            .where(col(OAuthToken.id) == token_id)
        )
        row = (await self.session.execute(query)).first()
        return (row[0], row[1], row[2]) if row else None

    # ---- API keys ----------------------------------------------------------------------------------

    async def key_standing(self, key_hash: str) -> tuple[ApiKey, OAuthClient, Department] | None:
        query = (
            select(ApiKey, OAuthClient, Department)
            .join(OAuthClient, col(OAuthClient.id) == col(ApiKey.client_id))
            .join(Department, col(Department.id) == col(OAuthClient.department_id))
            .where(col(ApiKey.key_hash) == key_hash)
        )
        row = (await self.session.execute(query)).first()
        return (row[0], row[1], row[2]) if row else None

    async def get_key(self, key_id: int) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def list_keys(self, client_id: str | None = None) -> Sequence[ApiKey]:
        query = select(ApiKey).order_by(col(ApiKey.id))
        if client_id is not None:
            query = query.where(col(ApiKey.client_id) == client_id)
        return (await self.session.scalars(query)).all()

    async def revoke_key(self, key_id: int, at: datetime) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=at)
        )

    async def touch_keys(self, last_used: Mapping[int, datetime]) -> None:
        for key_id, at in last_used.items():
            await self.session.execute(
                update(ApiKey)
                .where(
                    col(ApiKey.id) == key_id,
                    (col(ApiKey.last_used_at).is_(None)) | (col(ApiKey.last_used_at) < at),
                )
                .values(last_used_at=at)
            )

    # ---- signing keys ------------------------------------------------------------------------------

    async def signing_keys(self) -> Sequence[SigningKey]:
        return (await self.session.scalars(select(SigningKey).order_by(col(SigningKey.created_at)))).all()

    async def retire_signing_keys(self, except_kid: str, at: datetime) -> None:
        await self.session.execute(
            update(SigningKey)
            .where(col(SigningKey.kid) != except_kid, col(SigningKey.retired_at).is_(None))
            .values(retired_at=at)
        )

    # ---- usage -------------------------------------------------------------------------------------

    async def add_usage(self, counts: Mapping[tuple[date, str, str], int]) -> None:
        """Add request counts to the daily totals (an upsert, so several processes can flush)."""
        if not counts:
            return
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        rows = [
            {"day": day, "client_id": client, "endpoint_class": kind, "requests": n}
            for (day, client, kind), n in sorted(counts.items())
        ]
        statement = insert(UsageDaily).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["day", "client_id", "endpoint_class"],
            set_={"requests": col(UsageDaily.requests) + statement.excluded.requests},
        )
        await self.session.execute(statement)

    async def usage(self, first: date, last: date) -> Sequence[tuple[str, str, int, int]]:
        """(client_id, endpoint_class, requests, active days) over [first, last]."""
        query = (
            select(
                col(UsageDaily.client_id),
                col(UsageDaily.endpoint_class),
                func.sum(col(UsageDaily.requests)),
                func.count(),
            )
            .where(col(UsageDaily.day) >= first, col(UsageDaily.day) <= last)
            .group_by(col(UsageDaily.client_id), col(UsageDaily.endpoint_class))
            .order_by(col(UsageDaily.client_id), col(UsageDaily.endpoint_class))
        )
        return [(c, k, int(n), int(d)) for c, k, n, d in (await self.session.execute(query)).all()]

    # ---- audit -------------------------------------------------------------------------------------

    async def audit_entries(
        self, limit: int, before_id: int | None, action: str | None
    ) -> Sequence[AuditLog]:
        query = select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit)
        if before_id is not None:
            query = query.where(col(AuditLog.id) < before_id)
        if action is not None:
            query = query.where(col(AuditLog.action) == action)
        return (await self.session.scalars(query)).all()

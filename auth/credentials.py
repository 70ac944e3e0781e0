"""Resolves a request's credential (Bearer JWT or X-API-Key) to a Principal, checked against the store.

A token's signature and claims prove who issued it; the database says whether it still stands
(not revoked, client still approved). That answer is cached for `credential_cache_seconds`, so a
revocation takes effect at once in the process that made it (its cache is cleared) and within that
many seconds everywhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.settings import Settings
from auth.crypto import API_KEY, SecretHasher
from auth.errors import Unauthenticated
from auth.principal import ANONYMOUS, Principal
from auth.repository import AccessRepository
from auth.scopes import parse_scopes, tier_for_scopes
from auth.tokens import AccessTokenCodec, InvalidAccessToken


@dataclass(frozen=True)
class Resolved:
    principal: Principal
    api_key_id: int | None = None


class CredentialResolver:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], codec: AccessTokenCodec
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.codec = codec
        self.hasher = SecretHasher(settings.signing_secret.get_secret_value())
        self._cache: dict[str, tuple[float, Resolved | str]] = {}

    def invalidate(self) -> None:
        """Forget every checked credential (after a revocation or suspension in this process)."""
        self._cache.clear()

    def _cached(self, key: str) -> Resolved | str | None:
        hit = self._cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _remember(self, key: str, outcome: Resolved | str) -> Resolved | str:
        if len(self._cache) > 50_000:  # bounded: random garbage credentials cannot grow it forever
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.settings.credential_cache_seconds, outcome)
        return outcome

    async def resolve(self, authorization: str | None, api_key: str | None) -> Resolved:
        """The caller behind the request's `Authorization` and `X-API-Key` headers (the first of each)."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("send the access token as `Authorization: Bearer <token>`")
            return await self._token(token.strip())
        if api_key:
            return await self._api_key(api_key.strip())
        return Resolved(ANONYMOUS)

    async def _token(self, token: str) -> Resolved:
        try:
            claims = await self.codec.verify(token)
        except InvalidAccessToken as exc:
            raise Unauthenticated(str(exc)) from None
        jti = str(claims["jti"])
        outcome = self._cached("t:" + jti)
        if outcome is None:
            async with self.sessions() as session:
                standing = await AccessRepository(session).token_standing(jti)
            if standing is None or standing[0].kind != "access":
                outcome = "the token is not known to this portal"
            elif standing[0].revoked_at is not None:
                outcome = "the token has been revoked"
            elif standing[1].status != "approved":
                outcome = f"the client is {standing[1].status}"
            else:
                scopes = parse_scopes(str(claims.get("scope", "")))
                outcome = Resolved(
                    Principal(
                        tier=tier_for_scopes(scopes),
                        via="token",
                        client_id=standing[1].id,
                        department=str(claims.get("department") or standing[2].code),
                        scopes=scopes,
                    )
                )
            self._remember("t:" + jti, outcome)
        if isinstance(outcome, str):
            raise Unauthenticated(outcome)
        return outcome

    async def _api_key(self, key: str) -> Resolved:
        if not key.startswith(API_KEY):
            raise Unauthenticated("the API key is not valid")
        key_hash = self.hasher.hash(key)
        outcome = self._cached("k:" + key_hash)
        if outcome is None:
            async with self.sessions() as session:
                standing = await AccessRepository(session).key_standing(key_hash)
            if standing is None:
                outcome = "the API key is not valid"
            elif standing[0].revoked_at is not None:
                outcome = "the API key has been revoked"
            elif standing[1].status != "approved":
                outcome = f"the client of this API key is {standing[1].status}"
            else:
                key_row, client, department = standing
                scopes = parse_scopes(client.scopes)
                outcome = Resolved(
                    Principal(
                        tier=tier_for_scopes(scopes),
                        via="api_key",
                        client_id=client.id,
                        department=department.code,
                        scopes=scopes,
                    ),
                    api_key_id=key_row.id,
                )
            self._remember("k:" + key_hash, outcome)
        if isinstance(outcome, str):
            raise Unauthenticated(outcome)
        return outcome

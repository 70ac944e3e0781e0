"""JWT access tokens (RFC 9068 profile, ES256): signing keys kept in the database, rotation and JWKS.

Keys live in the `signing_key` table with the private half sealed by a key derived from
PORTAL_SIGNING_SECRET, so that every process behind the load balancer signs and verifies with the
same keys. The newest unretired key signs; after `signing_key_rotation_days` the next process that
signs creates a new key and retires the others, which stay published in the JWKS (and keep
verifying) until every token they signed has expired. Only ES256 is accepted when verifying, which
rules out `alg: none` and HMAC/RSA confusion.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import SigningKey
from app.settings import Settings
from auth.crypto import KeyVault
from auth.repository import AccessRepository

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # RFC 9068: tells access tokens apart from any other JWT
_RELOAD_SECONDS = 60.0  # how often a process rereads the key table
_MISS_RELOAD_SECONDS = 5.0  # an unknown kid rereads at most this often (random kids cannot hammer the DB)


class InvalidAccessToken(Exception):
    """The token is not one of ours, or no longer valid; the message is safe to show the caller."""


@dataclass(frozen=True)
class _Key:
    kid: str
    key: ECKey
    created_at: datetime
    retired_at: datetime | None


class SigningKeys:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._vault = KeyVault(settings.signing_secret.get_secret_value())
        self._keys: list[_Key] = []
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def _grace(self) -> timedelta:
        # A retired key verifies as long as a token it signed can live, plus one reload period.
        return timedelta(seconds=self.settings.access_token_seconds + _RELOAD_SECONDS + 60)

    async def _load(self) -> None:
        async with self.sessions() as session:
            rows = await AccessRepository(session).signing_keys()
        now = datetime.now(UTC)
        keys = []
        for row in rows:
            if row.retired_at is not None and row.retired_at + self._grace() < now:
                continue
            private = orjson.loads(self._vault.open(row.private_jwk, row.kid))
            keys.append(_Key(row.kid, ECKey.import_key(private), row.created_at, row.retired_at))
        self._keys = keys
        self._loaded_at = time.monotonic()

    async def _fresh(self, max_age: float = _RELOAD_SECONDS) -> list[_Key]:
        if time.monotonic() - self._loaded_at > max_age:
            async with self._lock:
                if time.monotonic() - self._loaded_at > max_age:
                    await self._load()
        return self._keys

    async def rotate(self) -> str:
        """Create a new signing key and retire the others (they keep verifying for a grace period)."""
        kid = await self._create(retire_others=True)
        await self._load()
        return kid

    async def _create(self, retire_others: bool) -> str:
        key = ECKey.generate_key("P-256", parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
        kid = str(key.kid)
        now = datetime.now(UTC)
        sealed = self._vault.seal(orjson.dumps(key.as_dict(private=True)), kid)
        async with self.sessions() as session, session.begin():
            repository = AccessRepository(session)
            await repository.add(
                SigningKey(
                    kid=kid,
                    alg=ALGORITHM,
                    public_jwk=orjson.dumps(key.as_dict(private=False)).decode(),
                    private_jwk=sealed,
                    created_at=now,
                )
            )
            if retire_others:
                await repository.retire_signing_keys(kid, now)
        return kid

    async def signer(self) -> _Key:
        keys = [k for k in await self._fresh() if k.retired_at is None]
        rotation = timedelta(days=self.settings.signing_key_rotation_days)
        if not keys or keys[-1].created_at + rotation < datetime.now(UTC):
            async with self._lock:
                await self._load()
                keys = [k for k in self._keys if k.retired_at is None]
                if not keys or keys[-1].created_at + rotation < datetime.now(UTC):
                    await self._create(retire_others=bool(keys))
                    await self._load()
                    keys = [k for k in self._keys if k.retired_at is None]
        return keys[-1]

    async def key_set(self, kid: str | None = None) -> KeySet:
        keys = await self._fresh()
        if kid is not None and all(k.kid != kid for k in keys):
            keys = await self._fresh(max_age=_MISS_RELOAD_SECONDS)
        return KeySet([k.key for k in keys])

    async def jwks(self) -> dict[str, Any]:
        await self.signer()  # a fresh deployment publishes its first key before anyone asks for a token
        return {"keys": [k.key.as_dict(private=False) for k in await self._fresh()]}


class AccessTokenCodec:
    def __init__(self, settings: Settings, keys: SigningKeys) -> None:
        self.settings = settings
        self.keys = keys

    async def sign(self, claims: Mapping[str, Any]) -> str:
        key = await self.keys.signer()
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": TOKEN_TYPE}
        return jwt.encode(header, dict(claims), key.key, algorithms=[ALGORITHM], default_type=None)

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token we signed for our audience; raises InvalidAccessToken otherwise."""
        try:
            header = _unverified_header(token)
            kid = header.get("kid")
            if header.get("alg") != ALGORITHM or not isinstance(kid, str):
                raise InvalidAccessToken("the token is not signed with ES256 by a key of this portal")
            if header.get("typ") != TOKEN_TYPE:
                raise InvalidAccessToken("the token is not an access token (typ must be at+jwt)")
            decoded = jwt.decode(token, await self.keys.key_set(kid), algorithms=[ALGORITHM])
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": self.settings.issuer},
                "aud": {"essential": True, "value": self.settings.jwt_audience},
                "jti": {"essential": True},
                "client_id": {"essential": True},
                "exp": {"essential": True},
            }
            jwt.JWTClaimsRegistry(leeway=30, **options).validate(decoded.claims)
        except InvalidAccessToken:
            raise
        except JoseError as exc:
            raise InvalidAccessToken(_describe(exc)) from None
        except (ValueError, TypeError):
            raise InvalidAccessToken("the token is malformed") from None
        return decoded.claims


def _unverified_header(token: str) -> dict[str, Any]:
    import base64

    head, _, _ = token.partition(".")
    if not head or token.count(".") != 2:
        raise InvalidAccessToken("the token is not a JWS compact serialization")
    header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    if not isinstance(header, dict):
        raise InvalidAccessToken("the token header is not a JSON object")
    return header


def _describe(exc: JoseError) -> str:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return "the token has expired"
    if name == "BadSignatureError":
        return "the token signature is invalid"
    if name in ("InvalidClaimError", "MissingClaimError"):
        return f"the token's claims are not valid here: {exc.description}"
    return "the token is not valid"

"""The access layer's per-process state: signing keys, credential cache, rate limits, usage flushing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.settings import Settings
from auth.credentials import CredentialResolver
from auth.limits import RateLimits
from auth.principal import Principal
from auth.repository import AccessRepository
from auth.service import AccessService, Actor
from auth.tokens import AccessTokenCodec, SigningKeys
from auth.usage import UsageRecorder


class AccessRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = RateLimits(settings)
        self.usage = UsageRecorder()
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._credentials: CredentialResolver | None = None
        self._codec: AccessTokenCodec | None = None

    def _started(self) -> tuple[async_sessionmaker[AsyncSession], CredentialResolver, AccessTokenCodec]:
        if self._sessions is None or self._credentials is None or self._codec is None:
            raise RuntimeError("the access runtime is not running: serve the app with its lifespan")
        return self._sessions, self._credentials, self._codec

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._started()[0]

    @property
    def credentials(self) -> CredentialResolver:
        return self._started()[1]

    @property
    def codec(self) -> AccessTokenCodec:
        return self._started()[2]

    @contextlib.asynccontextmanager
    async def running(self, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
        """Lifespan part: start the usage flusher; on shutdown flush what is left and close Redis."""
        self._sessions = sessions
        self._codec = AccessTokenCodec(self.settings, SigningKeys(self.settings, sessions))
        self._credentials = CredentialResolver(self.settings, sessions, self._codec)
        flusher = asyncio.create_task(self.usage.run(sessions, self.settings.usage_flush_seconds))
        try:
            yield
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            with contextlib.suppress(Exception):  # a database gone at shutdown must not hide the real error
                await self.usage.flush(sessions)
            await self.limits.close()

    async def audit_data_access(self, principal: Principal, path: str, query: str) -> None:
        async with self.sessions() as session, session.begin():
            service = AccessService(AccessRepository(session), self.settings)
            await service.audit(Actor.of(principal), "data.read", path, query=query)

"""Runtime settings, read from `PORTAL_*` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.deprecation import Deprecation

# Values shipped in examples and defaults; a non-development deployment must replace them.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "development-only-secret"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///var/portal.db"
    redis_url: str | None = None
    # Connections each process keeps open, and how many more it may open under load (closed again
    # when returned). Fewer than the requests in flight made PostgreSQL connect per request.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # A ping before each checkout of a pooled PostgreSQL connection: a round trip per request. Off, a
    # connection that died (a server restart) is found by its first use: the pool then replaces all
    # it held, reads run once more on a fresh one (app.db.read_retrying), others answer 503.
    db_pre_ping: bool = False
    # Secrets: the privacy secret derives record keys; the signing secret protects cursors.
    privacy_secret: SecretStr = SecretStr("development-only-secret")
    signing_secret: SecretStr = SecretStr("development-only-secret")

    public_base_url: str = "http://127.0.0.1:8000"
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    max_cells: int = Field(default=10_000, ge=1)  # observations one request may ask for
    # Response cache before routing: bytes kept in process, Redis TTL, and how often the
    # publication epoch (which keys every entry) is re-read from the database.
    # Routes announced for removal: [{"path_prefix": "/v1/x", "deprecated_on": "...", "sunset_on": "...",
    # "successor": "/v2/x"}] (JSON). Their responses carry Deprecation, Sunset and Link headers.
    deprecations: list[Deprecation] = []
    # A data query that runs longer is stopped with a 503 (PostgreSQL also gets it as statement_timeout).
    query_timeout_seconds: float = Field(default=20.0, gt=0)
    # FastAPI's OpenTelemetry instrumentation (tracing, metrics, logs) for deployments that run an OTel
    # SDK; off by default, since checking for providers costs every request even when none is set up.
    telemetry: bool = False
    cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    cache_ttl_seconds: int = Field(default=3600, ge=1)
    cache_epoch_seconds: float = Field(default=1.0, ge=0)
    # Published rows held decoded in process (app/query/rows.py), shared by every query; 0 holds none.
    row_cache_max_bytes: int = Field(default=128 * 1024 * 1024, ge=0)
    # GraphQL guards (schema/): a request's cells are capped by max_cells, as REST's are.
    graphql_max_depth: int = Field(default=8, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=0)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    graphql_timeout_s: float = Field(default=10.0, gt=0)
    graphql_cache_size: int = Field(default=512, ge=1)  # parsed/validated documents and cached answers
    cors_origins: list[str] = ["*"]
    log_level: str = "INFO"

    # Access (auth/): tokens, limits, usage. Limits are "N/second|minute|hour|day" strings (limits' syntax).
    jwt_issuer: str | None = None  # default: public_base_url
    jwt_audience: str = "population-portal"
    access_token_seconds: int = Field(default=900, ge=30)  # short: revocation also checks the store
    refresh_token_seconds: int = Field(default=30 * 86400, ge=60)
    authorization_code_seconds: int = Field(default=120, ge=10)
    initial_access_token_days: int = Field(default=30, ge=1)
    signing_key_rotation_days: int = Field(default=90, ge=1)  # a new key signs after this; old ones verify
    credential_cache_seconds: float = Field(default=2.0, ge=0)  # how long a checked credential is trusted
    rate_limit_public: str = "60/minute"  # keyless, per client IP
    rate_limit_department: str = "600/minute"  # per client
    rate_limit_internal: str = "3000/minute"  # per client
    rate_limit_oauth: str = "30/minute"  # /oauth/* per client IP (login and secret guessing)
    redis_key_prefix: str = "portal"  # every Redis key starts with it (shared servers, test runs)
    redis_retry_seconds: float = Field(default=5.0, gt=0)  # after a Redis failure, local counters this long
    usage_flush_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.environment != "development":
            for name in ("privacy_secret", "signing_secret"):
                secret: SecretStr = getattr(self, name)
                if secret.get_secret_value() in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"PORTAL_{name.upper()} is left at a placeholder value; set a real secret "
                        f"outside development (environment={self.environment})"
                    )
        from limits import parse

        for name in ("rate_limit_public", "rate_limit_department", "rate_limit_internal", "rate_limit_oauth"):
            try:
                parse(getattr(self, name))
            except ValueError:
                raise ValueError(f"PORTAL_{name.upper()} must look like '60/minute'") from None
        if self.default_page_size > self.max_page_size:
            raise ValueError("PORTAL_DEFAULT_PAGE_SIZE must not exceed PORTAL_MAX_PAGE_SIZE")
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def issuer(self) -> str:
        return self.jwt_issuer or self.public_base_url.rstrip("/")

    def sqlite_path(self) -> Path | None:
        """The database file of an SQLite URL (None for in-memory or other backends)."""
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None

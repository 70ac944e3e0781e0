"""Runtime settings, read from `PORTAL_*` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values shipped in examples and defaults; a non-development deployment must replace them.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "development-only-secret"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///var/portal.db"
    redis_url: str | None = None
    # Secrets: the privacy secret derives record keys; the signing secret protects cursors.
    privacy_secret: SecretStr = SecretStr("development-only-secret")
    signing_secret: SecretStr = SecretStr("development-only-secret")

    public_base_url: str = "http://127.0.0.1:8000"
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    max_cells: int = Field(default=10_000, ge=1)  # observations one request may ask for
    # GraphQL guards (schema/): a request's cells are capped by max_cells, as REST's are.
    graphql_max_depth: int = Field(default=8, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=0)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    graphql_timeout_s: float = Field(default=10.0, gt=0)
    graphql_cache_size: int = Field(default=512, ge=1)  # parsed/validated documents and cached answers
    cors_origins: list[str] = ["*"]
    log_level: str = "INFO"

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
        if self.default_page_size > self.max_page_size:
            raise ValueError("PORTAL_DEFAULT_PAGE_SIZE must not exceed PORTAL_MAX_PAGE_SIZE")
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of an SQLite URL (None for in-memory or other backends)."""
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None

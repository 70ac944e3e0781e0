"""Settings refuse placeholder secrets outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_placeholder_secret_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="PORTAL_PRIVACY_SECRET"):
        Settings(environment="production", signing_secret="a-real-signing-secret")  # type: ignore[arg-type,unused-ignore]


def test_development_accepts_defaults_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", "sqlite+aiosqlite:///tmp/x.db")
    monkeypatch.setenv("PORTAL_MAX_PAGE_SIZE", "50")
    monkeypatch.setenv("PORTAL_DEFAULT_PAGE_SIZE", "20")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///tmp/x.db"
    assert settings.max_page_size == 50
    assert settings.redis_url is None


def test_page_sizes_must_be_consistent() -> None:
    with pytest.raises(ValidationError, match="DEFAULT_PAGE_SIZE"):
        Settings(default_page_size=500, max_page_size=100)

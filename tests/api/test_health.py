"""Liveness and readiness."""

from __future__ import annotations

import httpx

from app.db import head_revision
from app.main import create_app
from tests.conftest import serve, settings_for


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.json() == {"status": "ok"}


async def test_ready_reports_the_current_migration(client: httpx.AsyncClient) -> None:
    body = (await client.get("/ready")).json()
    assert body["status"] == "ready"
    assert body["migration"] == head_revision()


async def test_not_ready_before_migrations(empty_database: str) -> None:
    async with serve(create_app(settings_for(empty_database))) as http:
        response = await http.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "portal db upgrade" in response.json()["detail"]

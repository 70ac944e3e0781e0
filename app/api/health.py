"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from app.db import current_revision, head_revision
from app.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migration: str | None


@router.get("/health", operation_id="health", response_model=Health)
async def health() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/ready", operation_id="ready", response_model=Readiness)
async def ready(request: Request) -> Readiness:
    """The database answers and its schema is at the latest migration."""
    engine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        revision = await current_revision(engine)
    except Exception as exc:  # any driver error means not ready
        raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from None
    if revision != head_revision():
        raise ServiceUnavailable(
            f"database schema at {revision}, expected {head_revision()}; run `portal db upgrade`"
        )
    return Readiness(status="ready", database=engine.dialect.name, migration=revision)

"""The published rate-limit policy: what each tier may do, and where the caller stands."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from auth.dependencies import PrincipalDep
from auth.runtime import AccessRuntime
from auth.scopes import SCOPE_TIERS

router = APIRouter(tags=["access"])


class LimitOut(BaseModel):
    limit: int
    window_seconds: int
    per: str = Field(description="What the limit is counted per: client IP (keyless) or client")
    text: str


class CallerOut(BaseModel):
    tier: str
    via: str = Field(description="anonymous, token or api_key")
    client_id: str | None
    department: str | None
    scopes: list[str]


class LimitsOut(BaseModel):
    tiers: dict[str, LimitOut] = Field(
        description="public, department, internal, and oauth (the /oauth/* endpoints)"
    )
    scopes: dict[str, str] = Field(description="Each scope and the tier it grants")
    caller: CallerOut
    headers: list[str]


@router.get("/limits", operation_id="getLimits", response_model=LimitsOut)
async def limits(request: Request, principal: PrincipalDep) -> LimitsOut:
    """The rate limits of every tier, the scope-to-tier map, and the caller's own tier.

    Every response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds);
    a `429` adds `Retry-After`. Keyless callers are counted per IP, credentials per client.
    """
    runtime: AccessRuntime = request.app.state.access
    return LimitsOut(
        tiers={name: LimitOut.model_validate(value) for name, value in runtime.limits.policy().items()},
        scopes={scope: tier.value for scope, tier in SCOPE_TIERS.items()},
        caller=CallerOut(
            tier=principal.tier.value,
            via=principal.via,
            client_id=principal.client_id,
            department=principal.department,
            scopes=sorted(principal.scopes),
        ),
        headers=[
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "Retry-After",
            "X-Portal-Tier",
        ],
    )

"""Scopes (`resource:action`), the tier each one grants, and the one check every route and field uses.

| scope | tier | grants |
|---|---|---|
| `data:read` | department | the department tier's finer atoms (single years, months) |
| `data:read:commune` | department | commune-level detail of the department tier |
| `data:read:internal` | internal | exact counts; every access is written to the audit log |
| `admin:clients` | internal | departments, clients, API keys, users |
| `admin:usage` | internal | usage figures and the plan's KPIs |
| `admin:audit` | internal | the audit log |

A principal's tier is the highest tier among its scopes; a credential without any scope is still
identified (usage, limits per client) but reads at the public tier. Registration (RFC 7591) may ask
only for department-tier scopes; internal scopes are granted by an admin with `portal clients create`.
"""

from __future__ import annotations

from collections.abc import Iterable

from auth.errors import InsufficientScope
from auth.principal import Principal, Tier

SCOPE_TIERS: dict[str, Tier] = {
    "data:read": Tier.DEPARTMENT,
    "data:read:commune": Tier.DEPARTMENT,
    "data:read:internal": Tier.INTERNAL,
    "admin:clients": Tier.INTERNAL,
    "admin:usage": Tier.INTERNAL,
    "admin:audit": Tier.INTERNAL,
}

SCOPE_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "data:read": ("Đọc dữ liệu chi tiết cấp sở, ngành", "Read department-tier data"),
    "data:read:commune": ("Đọc dữ liệu cấp xã", "Read commune-level data"),
    "data:read:internal": ("Đọc số liệu chính xác (có ghi nhật ký)", "Read exact counts (audited)"),
    "admin:clients": ("Quản lý ứng dụng và khóa API", "Manage clients and API keys"),
    "admin:usage": ("Xem số liệu sử dụng", "View usage figures"),
    "admin:audit": ("Xem nhật ký kiểm toán", "View the audit log"),
}

DEFAULT_SCOPES = frozenset({"data:read", "data:read:commune"})  # what a department client gets by default
REGISTRABLE_SCOPES = frozenset(s for s, t in SCOPE_TIERS.items() if t is Tier.DEPARTMENT)


def parse_scopes(text: str | None) -> frozenset[str]:
    return frozenset(part for part in (text or "").replace(",", " ").split() if part)


def format_scopes(scopes: Iterable[str]) -> str:
    return " ".join(sorted(scopes))


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(s for s in scopes if s not in SCOPE_TIERS)


def tier_for_scopes(scopes: Iterable[str]) -> Tier:
    tier = Tier.PUBLIC
    for scope in scopes:
        granted = SCOPE_TIERS.get(scope)
        if granted is not None and granted.rank > tier.rank:
            tier = granted
    return tier


def require_scope(principal: Principal, scope: str) -> None:
    """Raise 403 unless the caller's credential carries `scope`: the one check of every route and field."""
    if scope not in SCOPE_TIERS:
        raise ValueError(f"unknown scope {scope!r}; declare it in auth.scopes.SCOPE_TIERS")
    if scope in principal.scopes:
        return
    if principal.via == "anonymous":
        detail = f"this needs a credential with the scope {scope}; see /v1/limits and the README"
    else:
        detail = f"the credential of client {principal.client_id} lacks the scope {scope}"
    raise InsufficientScope(detail, required_scope=scope, tier=principal.tier.value)

"""The admin API of the population office: departments, clients, API keys, usage, KPIs, audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from app.api.deps import SessionDep, SettingsDep
from app.db import transaction
from app.models import ApiKey, Department, OAuthClient
from auth.dependencies import scoped
from auth.principal import Principal
from auth.reports import APP_TARGETS, DEPARTMENT_SHARE_TARGETS, usage_report
from auth.repository import AccessRepository
from auth.runtime import AccessRuntime
from auth.service import AccessService, Actor

router = APIRouter(prefix="/admin", tags=["admin"])

ClientsAdmin = Annotated[Principal, Depends(scoped("admin:clients"))]
UsageAdmin = Annotated[Principal, Depends(scoped("admin:usage"))]
AuditAdmin = Annotated[Principal, Depends(scoped("admin:audit"))]
ClientIdPath = Annotated[str, Path(description="The client_id")]
DaysQuery = Annotated[int, Query(ge=1, le=366, description="Window in days, ending today (UTC)")]


class ClientOut(BaseModel):
    client_id: str
    name: str
    department: str
    kind: str = Field(description="system (confidential client) or app (public client)")
    status: str = Field(description="pending, approved or suspended")
    scopes: list[str]
    grant_types: list[str]
    redirect_uris: list[str]
    registered_via: str
    created_at: datetime
    status_changed_at: datetime

    @classmethod
    def of(cls, client: OAuthClient, department: Department) -> ClientOut:
        return cls(
            client_id=client.id,
            name=client.name,
            department=department.code,
            kind="system" if client.confidential else "app",
            status=client.status,
            scopes=client.scopes.split(),
            grant_types=client.grant_types.split(),
            redirect_uris=client.redirect_uris.split(),
            registered_via=client.registered_via,
            created_at=client.created_at,
            status_changed_at=client.status_changed_at,
        )


class ClientList(BaseModel):
    items: list[ClientOut]
    total: int


class DepartmentOut(BaseModel):
    code: str
    name: str
    contact: str | None
    created_at: datetime


class DepartmentList(BaseModel):
    items: list[DepartmentOut]
    total: int


class ApiKeyOut(BaseModel):
    id: int
    client_id: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        assert key.id is not None
        return cls(
            id=key.id,
            client_id=key.client_id,
            prefix=key.prefix,
            name=key.name,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class NewApiKeyOut(ApiKeyOut):
    api_key: str = Field(description="The key itself: shown this once, stored only as a hash")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    total: int


class ClientUsageOut(BaseModel):
    client_id: str
    name: str
    kind: str
    status: str
    requests: dict[str, int] = Field(description="Requests by endpoint class")
    active_days: int
    uses_data: bool


class DepartmentUsageOut(BaseModel):
    code: str
    name: str
    clients: int
    apps: int = Field(description="Approved public clients (mobile and web apps)")
    systems: int = Field(description="Approved confidential clients (department systems)")
    active_clients: int = Field(description="Clients that used the data in the window")
    requests: dict[str, int]
    uses_data: bool
    usage: list[ClientUsageOut]


class UsageOut(BaseModel):
    first_day: date
    last_day: date
    departments: list[DepartmentUsageOut]
    anonymous: dict[str, int] = Field(description="Keyless requests by endpoint class")


class Target(BaseModel):
    phase: int
    goal: float
    met: bool


class Kpi(BaseModel):
    value: float
    targets: list[Target]


class KpisOut(BaseModel):
    first_day: date
    last_day: date
    apps_using_data: Kpi = Field(description="Clients (apps and systems) that used the data; goal 5, then 10")
    departments_using_data: Kpi = Field(
        description="Share of departments using the data; goal 80%, then 100%"
    )
    departments: int
    departments_active: int
    clients_approved: int
    requests: int = Field(description="Data, reference and GraphQL requests in the window, all callers")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    tier: str
    detail: dict[str, Any]


class AuditList(BaseModel):
    items: list[AuditOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page")


class NewKeyIn(BaseModel):
    name: str = Field(default="", max_length=200, description="What the key is for")


def _runtime(request: Request) -> AccessRuntime:
    runtime: AccessRuntime = request.app.state.access
    return runtime


@router.get("/departments", operation_id="adminListDepartments", response_model=DepartmentList)
async def list_departments(_: ClientsAdmin, session: SessionDep) -> DepartmentList:
    """Registered departments (`admin:clients`)."""
    items = [
        DepartmentOut(code=d.code, name=d.name, contact=d.contact, created_at=d.created_at)
        for d in await AccessRepository(session).list_departments()
    ]
    return DepartmentList(items=items, total=len(items))


@router.get("/clients", operation_id="adminListClients", response_model=ClientList)
async def list_clients(
    _: ClientsAdmin,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description="pending, approved or suspended")] = None,
    department: Annotated[str | None, Query(description="Department code")] = None,
) -> ClientList:
    """OAuth2 clients, oldest first, optionally by status or department (`admin:clients`)."""
    rows = await AccessService(AccessRepository(session), settings).list_clients(status, department)
    items = [ClientOut.of(c, d) for c, d in rows]
    return ClientList(items=items, total=len(items))


async def _set_status(request: Request, principal: Principal, client_id: str, status: str) -> ClientOut:
    runtime = _runtime(request)
    async with transaction(runtime.sessions) as session:
        repository = AccessRepository(session)
        client = await AccessService(repository, runtime.settings).set_client_status(
            Actor.of(principal), client_id, status
        )
        department = await repository.get_department(client.department_id)
        assert department is not None
    runtime.credentials.invalidate()  # after the commit: a suspension is effective at once here
    return ClientOut.of(client, department)


@router.post("/clients/{client_id}/approve", operation_id="adminApproveClient", response_model=ClientOut)
async def approve_client(request: Request, principal: ClientsAdmin, client_id: ClientIdPath) -> ClientOut:
    """Approve a pending (or suspended) client: it may then obtain tokens (`admin:clients`)."""
    return await _set_status(request, principal, client_id, "approved")


@router.post("/clients/{client_id}/suspend", operation_id="adminSuspendClient", response_model=ClientOut)
async def suspend_client(request: Request, principal: ClientsAdmin, client_id: ClientIdPath) -> ClientOut:
    """Suspend a client: its tokens and API keys stop working at once (`admin:clients`)."""
    return await _set_status(request, principal, client_id, "suspended")


@router.get("/keys", operation_id="adminListApiKeys", response_model=ApiKeyList)
async def list_keys(
    _: ClientsAdmin,
    session: SessionDep,
    settings: SettingsDep,
    client_id: Annotated[str | None, Query(description="Only the keys of this client")] = None,
) -> ApiKeyList:
    """API keys (never the keys themselves): prefix, client, created, revoked, last used (`admin:clients`)."""
    keys = await AccessService(AccessRepository(session), settings).list_keys(client_id)
    return ApiKeyList(items=[ApiKeyOut.of(k) for k in keys], total=len(keys))


@router.post(
    "/clients/{client_id}/keys",
    operation_id="adminCreateApiKey",
    response_model=NewApiKeyOut,
    status_code=201,
)
async def create_key(
    request: Request,
    principal: ClientsAdmin,
    client_id: ClientIdPath,
    body: Annotated[NewKeyIn | None, Body()] = None,
) -> NewApiKeyOut:
    """Create an API key for a department system; the key is in this response only (`admin:clients`)."""
    runtime = _runtime(request)
    async with transaction(runtime.sessions) as session:
        new = await AccessService(AccessRepository(session), runtime.settings).create_key(
            Actor.of(principal), client_id, body.name if body else ""
        )
    return NewApiKeyOut(**ApiKeyOut.of(new.key).model_dump(), api_key=new.plain)


@router.post("/keys/{key_id}/revoke", operation_id="adminRevokeApiKey", response_model=ApiKeyOut)
async def revoke_key(
    request: Request, principal: ClientsAdmin, key_id: Annotated[int, Path(description="API key id")]
) -> ApiKeyOut:
    """Revoke an API key; requests with it fail at once (`admin:clients`)."""
    runtime = _runtime(request)
    async with transaction(runtime.sessions) as session:
        key = await AccessService(AccessRepository(session), runtime.settings).revoke_key(
            Actor.of(principal), key_id
        )
    runtime.credentials.invalidate()
    return ApiKeyOut.of(key)


@router.get("/usage", operation_id="adminUsage", response_model=UsageOut)
async def usage(_: UsageAdmin, session: SessionDep, days: DaysQuery = 30) -> UsageOut:
    """Requests per department and client by endpoint class over the last `days` days (`admin:usage`).

    Figures are flushed from each process every `PORTAL_USAGE_FLUSH_SECONDS`, so the last seconds may
    not be in yet.
    """
    report = await usage_report(AccessRepository(session), days)
    departments = []
    for d in report.departments:
        approved = [c for c in d.clients if c.status == "approved"]
        departments.append(
            DepartmentUsageOut(
                code=d.code,
                name=d.name,
                clients=len(d.clients),
                apps=sum(c.kind == "app" for c in approved),
                systems=sum(c.kind == "system" for c in approved),
                active_clients=sum(c.uses_data for c in d.clients),
                requests=d.requests,
                uses_data=d.uses_data,
                usage=[
                    ClientUsageOut(
                        client_id=c.client_id,
                        name=c.name,
                        kind=c.kind,
                        status=c.status,
                        requests=dict(sorted(c.requests.items())),
                        active_days=c.active_days,
                        uses_data=c.uses_data,
                    )
                    for c in d.clients
                ],
            )
        )
    return UsageOut(
        first_day=report.first, last_day=report.last, departments=departments, anonymous=report.anonymous
    )


@router.get("/kpis", operation_id="adminKpis", response_model=KpisOut)
async def kpis(_: UsageAdmin, session: SessionDep, days: DaysQuery = 30) -> KpisOut:
    """The plan's KPIs over the last `days` days: apps using the data (goal 5, then 10) and the share of
    departments using it (goal 80%, then 100%) (`admin:usage`)."""
    report = await usage_report(AccessRepository(session), days)
    clients = [c for d in report.departments for c in d.clients]
    apps = sum(c.uses_data for c in clients)
    active = sum(d.uses_data for d in report.departments)
    share = active / len(report.departments) if report.departments else 0.0
    from auth.usage import DATA_CLASSES

    requests = sum(n for c in clients for k, n in c.requests.items() if k in DATA_CLASSES)
    requests += sum(n for k, n in report.anonymous.items() if k in DATA_CLASSES)
    return KpisOut(
        first_day=report.first,
        last_day=report.last,
        apps_using_data=Kpi(
            value=apps,
            targets=[Target(phase=i + 1, goal=g, met=apps >= g) for i, g in enumerate(APP_TARGETS)],
        ),
        departments_using_data=Kpi(
            value=round(share, 4),
            targets=[
                Target(phase=i + 1, goal=g, met=share >= g - 1e-9)
                for i, g in enumerate(DEPARTMENT_SHARE_TARGETS)
            ],
        ),
        departments=len(report.departments),
        departments_active=active,
        clients_approved=sum(c.status == "approved" for c in clients),
        requests=requests,
    )


@router.get("/audit", operation_id="adminAuditLog", response_model=AuditList)
async def audit_log(
    _: AuditAdmin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(description="Entries older than this id")] = None,
    action: Annotated[str | None, Query(description="e.g. client.approve, data.read")] = None,
) -> AuditList:
    """The append-only audit log, newest first: admin actions and internal-tier data access (`admin:audit`)."""
    rows = await AccessRepository(session).audit_entries(limit, before, action)
    items = [
        AuditOut(
            id=r.id or 0,
            at=r.at,
            actor=r.actor,
            action=r.action,
            target=r.target,
            tier=r.tier,
            detail=orjson.loads(r.detail),
        )
        for r in rows
    ]
    return AuditList(items=items, next_before=items[-1].id if len(items) == limit else None)

"""Usage figures and the plan's KPIs, per department: apps using the data, departments using it.

The national plan's targets: at least 5, then 10, apps built on the data; 80%, then 100%, of
departments using it. A client "uses the data" when it made at least one data, reference or GraphQL
request in the window (token and OAuth traffic do not count).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from auth.repository import AccessRepository
from auth.usage import ANONYMOUS_CLIENT, DATA_CLASSES

APP_TARGETS = (5, 10)
DEPARTMENT_SHARE_TARGETS = (0.8, 1.0)


@dataclass
class ClientUsage:
    client_id: str
    name: str
    kind: str  # app (public client) | system (confidential client)
    status: str
    requests: dict[str, int] = field(default_factory=dict)
    active_days: int = 0

    @property
    def uses_data(self) -> bool:
        return any(self.requests.get(k, 0) for k in DATA_CLASSES)


@dataclass
class DepartmentUsage:
    code: str
    name: str
    clients: list[ClientUsage]

    @property
    def requests(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for client in self.clients:
            for kind, n in client.requests.items():
                totals[kind] += n
        return dict(sorted(totals.items()))

    @property
    def uses_data(self) -> bool:
        return any(c.uses_data for c in self.clients)


@dataclass
class UsageReport:
    first: date
    last: date
    departments: list[DepartmentUsage]
    anonymous: dict[str, int]


def window(days: int, today: date | None = None) -> tuple[date, date]:
    last = today or datetime.now(UTC).date()
    return last - timedelta(days=days - 1), last


async def usage_report(repository: AccessRepository, days: int) -> UsageReport:
    first, last = window(days)
    departments = await repository.list_departments()
    clients = await repository.list_clients()
    by_client: dict[str, ClientUsage] = {
        c.id: ClientUsage(c.id, c.name, "system" if c.confidential else "app", c.status) for c in clients
    }
    anonymous: dict[str, int] = {}
    for client_id, kind, requests, active_days in await repository.usage(first, last):
        if client_id == ANONYMOUS_CLIENT:
            anonymous[kind] = anonymous.get(kind, 0) + requests
        elif client_id in by_client:
            usage = by_client[client_id]
            usage.requests[kind] = requests
            usage.active_days = max(usage.active_days, active_days)
    grouped: dict[int, list[ClientUsage]] = defaultdict(list)
    for client in clients:
        grouped[client.department_id].append(by_client[client.id])
    return UsageReport(
        first,
        last,
        [DepartmentUsage(d.code, d.name, grouped.get(d.id or 0, [])) for d in departments],
        anonymous,
    )

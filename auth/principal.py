"""Who is calling: the access tier and the credential behind it, resolved once per request.

The tier is what the privacy filter, cell caps and rate limits read; everything else (client,
department, scopes) is for audit, usage figures and scope checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    PUBLIC = "public"  # no credential: open data (Decree 47/2020), coarse atoms
    DEPARTMENT = "department"  # a department's client or API key: finer atoms
    INTERNAL = "internal"  # the population office: exact counts, every access audited

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Tier.PUBLIC: 0, Tier.DEPARTMENT: 1, Tier.INTERNAL: 2}


@dataclass(frozen=True)
class Principal:
    tier: Tier
    via: str = "anonymous"  # anonymous | token | api_key
    client_id: str | None = None
    department: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(Tier.PUBLIC)


ANONYMOUS = Principal.anonymous()

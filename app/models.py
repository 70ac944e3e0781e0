"""Database tables (SQLModel). Reference data here; release tables join them as their issues land."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel


class Geography(SQLModel, table=True):
    """A version of the administrative geography, valid over a period."""

    id: str = Field(primary_key=True, max_length=32)
    name_vi: str
    name_en: str
    levels: str  # comma-separated, top level first, e.g. "province,district,commune"
    valid_from: date
    valid_to: date | None = None
    source: str


class Area(SQLModel, table=True):
    """An administrative unit of one geography version, identified by its GSO code."""

    geography: str = Field(primary_key=True, foreign_key="geography.id", max_length=32)
    code: str = Field(primary_key=True, max_length=16)
    level: str = Field(index=True, max_length=16)
    parent_code: str | None = Field(default=None, index=True, max_length=16)
    name: str
    short_name: str
    name_ascii: str = Field(index=True)  # lower-case, accents folded: for accent-insensitive search
    unit_type: str = Field(max_length=32)
    urban: bool  # phường and thị trấn (and cities' quận) count as urban, as GSO does


class AreaLink(SQLModel, table=True):
    """One row of a crosswalk: an old unit's population went (wholly or partly) to a new unit."""

    __tablename__ = "area_link"

    from_geography: str = Field(primary_key=True, max_length=32)
    from_code: str = Field(primary_key=True, max_length=16)
    to_geography: str = Field(primary_key=True, max_length=32)
    to_code: str = Field(primary_key=True, max_length=16, index=True)
    kind: str = Field(max_length=32)  # whole | partial | partial_area | ... (see connectors.geography)
    n_targets: int
    # Share of the old unit's population that went to this target, where the source says it;
    # None where the split is known but not its shares (then shares come from population counts).
    population_share: float | None = None
    note_vi: str
    reconciled: bool  # False when an end of the link is not a unit of its geography version


class ReconciliationIssue(SQLModel, table=True):
    """A reference-data row that does not reconcile; kept and reported, never dropped."""

    __tablename__ = "reconciliation_issue"

    id: int | None = Field(default=None, primary_key=True)
    dataset: str = Field(index=True, max_length=64)
    key: str = Field(max_length=64)
    detail: str


class Indicator(SQLModel, table=True):
    """An indicator of the portal's catalogue, tied to an entry of the official indicator system."""

    code: str = Field(primary_key=True, max_length=32)
    official_code: str = Field(index=True, max_length=16)
    name_vi: str
    name_en: str
    official_name_vi: str
    official_name_en: str
    definition: str
    formula: str
    unit_vi: str
    unit_en: str
    decimals: int
    topic: str = Field(index=True, max_length=32)
    dimensions: str  # comma-separated breakdowns, e.g. "sex,age"
    periodicity: str  # comma-separated period kinds: month, quarter, year
    official_disaggregations: str
    official_periodicity: str
    legal_basis: str
    source: str
    supported: bool  # computed by the portal from the register


class RegisterLoad(SQLModel, table=True):
    """One run of a connector: what it read, what it rejected, and the release it published (if any)."""

    __tablename__ = "register_load"

    id: int | None = Field(default=None, primary_key=True)
    connector: str = Field(max_length=32)
    source: str  # what was read (a directory, a database without its password, a package)
    input_hash: str = Field(index=True, max_length=64)  # of the validated canonical records
    status: str = Field(max_length=16)  # published | unchanged | failed
    rows_read: int = 0
    rows_rejected: int = 0
    message: str = ""
    release_id: str | None = Field(default=None, max_length=64)
    started_at: datetime
    finished_at: datetime | None = None


class LoadReject(SQLModel, table=True):
    """A source row that failed validation, kept with where it was and why."""

    __tablename__ = "load_reject"

    id: int | None = Field(default=None, primary_key=True)
    load_id: int = Field(foreign_key="register_load.id", index=True)
    file: str = Field(max_length=64)
    line: int
    record_id: str = Field(max_length=64)
    reason: str


class Release(SQLModel, table=True):
    """An immutable published snapshot of the cube; the newest published one is served by default."""

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # register | census
    created_at: datetime = Field(index=True)
    synthetic: bool  # built from generated data: every response says so
    first_month: int  # month indexes (year * 12 + month - 1) of the cube's time span
    last_month: int
    geographies: str  # comma-separated geography versions the cube is expressed in
    sources: str  # JSON list of {connector, source, input_hash}
    row_counts: str  # JSON: records read per table and cube rows per measure
    input_hash: str = Field(index=True, max_length=64)
    note: str = ""


class CubeCell(SQLModel, table=True):
    """True base counts of one area and month: every measure of the release's layout in one array.

    This is the internal store. Public serving reads perturbed atoms only (disclosure control).
    """

    __tablename__ = "cube_cell"

    release_id: str = Field(primary_key=True, foreign_key="release.id", max_length=64)
    geography: str = Field(primary_key=True, max_length=32)
    area_code: str = Field(primary_key=True, max_length=16)
    month: int = Field(primary_key=True)
    counts: bytes  # int32 little-endian, zlib; measures concatenated in the release's layout


class PublishedCell(SQLModel, table=True):
    """Published (perturbed) atoms of one area and time unit, every atom set of that time grain in one
    row (the release note gives the layout): the serving store.

    Values only: never true counts, record keys or noise. `exact` marks, per value, the cells of
    declared invariants that were benchmarked to their true totals (set only on rows of the areas
    those invariants are declared for).
    """

    __tablename__ = "published_cell"

    release_id: str = Field(primary_key=True, foreign_key="release.id", max_length=64)
    geography: str = Field(primary_key=True, max_length=32)
    area_code: str = Field(primary_key=True, max_length=16)
    time_unit: str = Field(primary_key=True, max_length=16)  # month | quarter | year: the bundle
    period: int = Field(primary_key=True)  # month index of the last month of the atom's time unit
    values: bytes  # int32 little-endian, zlib: the bundle's atom sets concatenated
    exact: bytes | None = None  # uint8 per value, zlib: 1 where the value is an exact invariant


# ---- access (auth/): departments, users, OAuth2 clients, tokens, API keys, usage, audit ---------------
# Secrets (client secrets, refresh tokens, codes, API keys, initial access tokens) are stored only as
# HMAC-SHA256 hashes keyed by the signing secret; the plain value is shown once and never again.


class Department(SQLModel, table=True):
    """A government department (or the population office) whose systems and apps use the data."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    name: str
    contact: str | None = None
    created_at: datetime


class PortalUser(SQLModel, table=True):
    """A department's staff member who can sign in on the authorization page."""

    __tablename__ = "portal_user"

    id: int | None = Field(default=None, primary_key=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    username: str = Field(unique=True, max_length=64)
    password_hash: str  # scrypt, see auth.crypto
    active: bool = True
    created_at: datetime


class OAuthClient(SQLModel, table=True):
    """An OAuth2 client of one department: a confidential system or a public (mobile) app."""

    __tablename__ = "oauth_client"

    id: str = Field(primary_key=True, max_length=64)  # the client_id
    department_id: int = Field(foreign_key="department.id", index=True)
    name: str
    confidential: bool
    secret_hash: str | None = Field(default=None, max_length=64)
    redirect_uris: str = ""  # space-separated
    grant_types: str  # space-separated
    scopes: str  # space-separated: the most a token of this client may carry
    status: str = Field(index=True, max_length=16)  # pending | approved | suspended
    registered_via: str = Field(max_length=16)  # admin | registration (RFC 7591)
    created_at: datetime
    status_changed_at: datetime


class InitialAccessToken(SQLModel, table=True):
    """A department's bearer token for RFC 7591 registration."""

    __tablename__ = "initial_access_token"

    id: int | None = Field(default=None, primary_key=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class AuthorizationCode(SQLModel, table=True):
    """A one-time authorization code (RFC 6749 4.1) bound to its client, redirect URI and PKCE challenge."""

    __tablename__ = "authorization_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(foreign_key="oauth_client.id", index=True, max_length=64)
    user_id: int = Field(foreign_key="portal_user.id")
    redirect_uri: str
    scope: str
    code_challenge: str = Field(max_length=128)  # S256 only
    grant_id: str = Field(max_length=32)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class OAuthToken(SQLModel, table=True):
    """An issued token: access tokens by their JWT id, refresh tokens by their hash.

    Tokens of one authorization share a `grant_id`, so a replayed code or refresh token revokes them all.
    """

    __tablename__ = "oauth_token"

    id: str = Field(primary_key=True, max_length=64)  # access: jti; refresh: HMAC hash of the token
    kind: str = Field(max_length=16)  # access | refresh
    grant_id: str = Field(index=True, max_length=32)
    client_id: str = Field(foreign_key="oauth_client.id", index=True, max_length=64)
    user_id: int | None = Field(default=None, foreign_key="portal_user.id")
    scope: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    rotated_at: datetime | None = None  # refresh tokens: exchanged for a new one (reuse revokes the grant)


class ApiKey(SQLModel, table=True):
    """A department integration's static key (`X-API-Key`), acting with its client's scopes."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(foreign_key="oauth_client.id", index=True, max_length=64)
    key_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=24)  # the first characters, to recognise a key in lists
    name: str = ""
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class UsageDaily(SQLModel, table=True):
    """Requests of one client (or `anonymous`) on one day to one class of endpoints."""

    __tablename__ = "usage_daily"

    day: date = Field(primary_key=True)
    client_id: str = Field(primary_key=True, max_length=64)
    endpoint_class: str = Field(primary_key=True, max_length=16)
    requests: int


class AuditLog(SQLModel, table=True):
    """Append-only record of admin actions and internal-tier data access (triggers refuse changes)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=128)  # cli | client:<id> | user:<name>
    action: str = Field(index=True, max_length=64)
    target: str = ""
    tier: str = Field(max_length=16)
    detail: str = "{}"  # JSON


class SigningKey(SQLModel, table=True):
    """A JWT signing key; the private half is encrypted with a key derived from the signing secret."""

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=16)
    public_jwk: str  # JSON
    private_jwk: bytes  # AES-GCM(nonce || ciphertext) of the private JWK's JSON
    created_at: datetime
    retired_at: datetime | None = None  # no longer signs; still published until its tokens expire

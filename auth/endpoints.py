"""Routes of the authorization server: /oauth/* (RFC 6749, 7009, 7591, 7662, 7636) and /.well-known/*.

These answer with RFC 6749 JSON errors, not problem+json. Each request is its own unit of work,
committed before the response leaves, and also when the answer is an error: a replayed code or a
reused refresh token must leave its grant revoked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.http import OrjsonResponse
from auth import crypto
from auth.errors import OAuthError
from auth.oauth import AuthorizationRequest, AuthorizeError, OAuthServer
from auth.pages import consent_page, error_page
from auth.repository import AccessRepository
from auth.runtime import AccessRuntime
from auth.scopes import SCOPE_TIERS
from auth.service import AccessService

router = APIRouter(tags=["oauth"])
T = TypeVar("T")

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    }
}
_AUTHORIZE_REQUEST_SECONDS = 600  # how long a rendered consent form stays valid


def _runtime(request: Request) -> AccessRuntime:
    runtime: AccessRuntime = request.app.state.access
    return runtime


async def _form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the parameters as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > 16_384:
        raise OAuthError("invalid_request", "the request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not valid form data") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 3.1: parameters must not be repeated
            raise OAuthError("invalid_request", f"the parameter {name} is repeated")
        form[name] = value
    return {k: v for k, v in form.items() if v != ""}  # RFC 6749 3.1: empty means omitted


async def _unit_of_work(request: Request, work: Callable[[OAuthServer], Awaitable[T]]) -> T | Response:
    runtime = _runtime(request)
    # Create or rotate the signing key before this transaction writes: on SQLite a key written from
    # inside it would wait for its own lock.
    await runtime.codec.keys.signer()
    async with runtime.sessions() as session:
        server = OAuthServer(AccessRepository(session), runtime.settings, runtime.codec)
        try:
            result = await work(server)
        except OAuthError as exc:
            await session.commit()
            return exc.response()
        await session.commit()
        return result


@router.post(
    "/oauth/token", operation_id="oauthToken", openapi_extra=_FORM_BODY, response_class=OrjsonResponse
)
async def token(request: Request) -> Response:
    """Token endpoint (RFC 6749): `client_credentials`, `authorization_code` with PKCE, `refresh_token`.

    Clients authenticate with HTTP Basic (`client_id:client_secret`) or `client_secret` in the body;
    public clients send only `client_id`. Refresh tokens rotate on every use.
    """
    try:
        form = await _form(request)
    except OAuthError as exc:
        return exc.response()
    authorization = request.headers.get("authorization")
    result = await _unit_of_work(request, lambda server: server.token(form, authorization))
    if isinstance(result, Response):
        return result
    return OrjsonResponse(result, headers=_NO_STORE)


@router.post(
    "/oauth/revoke", operation_id="oauthRevoke", openapi_extra=_FORM_BODY, response_class=OrjsonResponse
)
async def revoke(request: Request) -> Response:
    """Revocation (RFC 7009) of an access or refresh token of the calling client; effective at once.

    Revoking a refresh token also revokes the access tokens of its grant. Unknown tokens get 200 too.
    """
    try:
        form = await _form(request)
    except OAuthError as exc:
        return exc.response()
    authorization = request.headers.get("authorization")
    result = await _unit_of_work(request, lambda server: server.revoke(form, authorization))
    if isinstance(result, Response):
        return result
    _runtime(request).credentials.invalidate()
    return OrjsonResponse({}, headers=_NO_STORE)


@router.post(
    "/oauth/introspect",
    operation_id="oauthIntrospect",
    openapi_extra=_FORM_BODY,
    response_class=OrjsonResponse,
)
async def introspect(request: Request) -> Response:
    """Introspection (RFC 7662): whether a token is active, with its scope, client, department and tier.

    A client sees its own tokens; a client with `admin:clients` sees all. Others get `{"active": false}`.
    """
    try:
        form = await _form(request)
    except OAuthError as exc:
        return exc.response()
    authorization = request.headers.get("authorization")
    result = await _unit_of_work(request, lambda server: server.introspect(form, authorization))
    if isinstance(result, Response):
        return result
    return OrjsonResponse(result, headers=_NO_STORE)


@router.post("/oauth/register", operation_id="oauthRegister", status_code=201, response_class=OrjsonResponse)
async def register(request: Request) -> Response:
    """Dynamic client registration (RFC 7591) with the department's initial access token as Bearer.

    The new client is `pending` until the population office approves it. Confidential clients
    (`token_endpoint_auth_method` client_secret_basic or client_secret_post) get a secret, shown once;
    public clients (`none`) need `redirect_uris` and use authorization_code with PKCE.
    """
    authorization = request.headers.get("authorization", "")
    scheme, _, bearer = authorization.partition(" ")
    iat = bearer.strip() if scheme.lower() == "bearer" else None
    try:
        metadata = orjson.loads(await request.body())
        if not isinstance(metadata, dict):
            raise ValueError
    except ValueError:
        return OAuthError("invalid_client_metadata", "the body must be a JSON object").response()
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        try:
            new = await AccessService(AccessRepository(session), runtime.settings).register_client(
                iat, metadata
            )
        except OAuthError as exc:
            return exc.response()
        await session.commit()
    client = new.client
    body: dict[str, Any] = {
        "client_id": client.id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris.split(),
        "grant_types": client.grant_types.split(),
        "response_types": ["code"] if "authorization_code" in client.grant_types.split() else [],
        "token_endpoint_auth_method": (
            metadata.get("token_endpoint_auth_method", "client_secret_basic")
            if client.confidential
            else "none"
        ),
        "scope": client.scopes,
        "department": new.department.code,
        "status": client.status,
    }
    if new.secret is not None:
        body["client_secret"] = new.secret
        body["client_secret_expires_at"] = 0
    return OrjsonResponse(body, status_code=201, headers=_NO_STORE)


# ---- authorization endpoint: login and consent -------------------------------------------------------


def _request_mac(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _seal_request(runtime: AccessRuntime, params: dict[str, str]) -> str:
    """The validated request, signed into the form so that its fields cannot be altered on the way."""
    key = crypto.derive_key(runtime.settings.signing_secret.get_secret_value(), "portal authorize form v1")
    payload = base64.urlsafe_b64encode(orjson.dumps({"p": params, "t": int(time.time())})).decode()
    return f"{payload}.{_request_mac(key, payload)}"


def _open_request(runtime: AccessRuntime, sealed: str | None) -> dict[str, str] | None:
    if not sealed or "." not in sealed:
        return None
    payload, _, mac = sealed.rpartition(".")
    key = crypto.derive_key(runtime.settings.signing_secret.get_secret_value(), "portal authorize form v1")
    if not hmac.compare_digest(_request_mac(key, payload), mac):
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None
    if not isinstance(data, dict) or int(data.get("t", 0)) + _AUTHORIZE_REQUEST_SECONDS < time.time():
        return None
    params = data.get("p")
    return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else None


def _redirect(redirect_uri: str, **params: str | None) -> RedirectResponse:
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303, headers=_NO_STORE)


def _authorize_failure(runtime: AccessRuntime, exc: AuthorizeError, params: dict[str, str]) -> Response:
    if not exc.redirect:
        # RFC 6749 4.1.2.1: never redirect to an unverified address; tell the user instead.
        return HTMLResponse(error_page(exc.description), status_code=400, headers=_PAGE_HEADERS)
    return _redirect(
        params["redirect_uri"],
        error=exc.error,
        error_description=exc.description,
        state=params.get("state"),
        iss=runtime.settings.issuer,
    )


def _consent(
    runtime: AccessRuntime,
    areq: AuthorizationRequest,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> HTMLResponse:
    html = consent_page(
        areq.client.name,
        areq.department.name,
        sorted(areq.scopes),
        {"request": _seal_request(runtime, areq.as_params())},
        error=error,
        username=username,
    )
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


@router.get("/oauth/authorize", operation_id="oauthAuthorize", response_class=HTMLResponse)
async def authorize_page(request: Request) -> Response:
    """Authorization endpoint (RFC 6749 4.1): the login and consent page for department users.

    Requires `response_type=code`, a registered `redirect_uri` and PKCE (`code_challenge`,
    `code_challenge_method=S256`).
    """
    runtime = _runtime(request)
    params = dict(request.query_params)
    async with runtime.sessions() as session:
        server = OAuthServer(AccessRepository(session), runtime.settings, runtime.codec)
        try:
            areq = await server.authorization_request(params)
        except AuthorizeError as exc:
            return _authorize_failure(runtime, exc, params)
    return _consent(runtime, areq)


@router.post(
    "/oauth/authorize",
    operation_id="oauthAuthorizeSubmit",
    openapi_extra=_FORM_BODY,
    response_class=HTMLResponse,
)
async def authorize_submit(request: Request) -> Response:
    """The submitted login and consent form: redirects back to the client with a code, or an error."""
    runtime = _runtime(request)
    try:
        form = await _form(request)
    except OAuthError as exc:
        return HTMLResponse(error_page(exc.description), status_code=400, headers=_PAGE_HEADERS)
    params = _open_request(runtime, form.get("request"))
    if params is None:
        return HTMLResponse(
            error_page(
                "Biểu mẫu đã hết hạn hoặc bị thay đổi; hãy thử lại. / The form expired or was altered."
            ),
            status_code=400,
            headers=_PAGE_HEADERS,
        )
    async with runtime.sessions() as session:
        repository = AccessRepository(session)
        server = OAuthServer(repository, runtime.settings, runtime.codec)
        try:
            areq = await server.authorization_request(params)
        except AuthorizeError as exc:
            return _authorize_failure(runtime, exc, params)
        if form.get("decision") != "allow":
            return _redirect(
                areq.redirect_uri,
                error="access_denied",
                error_description="the user denied the request",
                state=areq.state,
                iss=runtime.settings.issuer,
            )
        username = form.get("username", "")
        user = await repository.user_by_username(username)
        valid = await asyncio.to_thread(
            crypto.verify_password, form.get("password", ""), user.password_hash if user else None
        )
        if user is None or not valid or not user.active:
            message = "Sai tên đăng nhập hoặc mật khẩu. / Wrong username or password."
            return _consent(runtime, areq, message, username, status=401)
        if user.department_id != areq.client.department_id:
            message = (
                "Tài khoản này không thuộc đơn vị của ứng dụng. / "
                "This account does not belong to the app's department."
            )
            return _consent(runtime, areq, message, username, status=403)
        code = await server.issue_code(areq, user)
        await session.commit()
    return _redirect(areq.redirect_uri, code=code, state=areq.state, iss=runtime.settings.issuer)


# ---- discovery ---------------------------------------------------------------------------------------


@router.get("/.well-known/oauth-authorization-server", operation_id="oauthMetadata")
async def metadata(request: Request) -> dict[str, Any]:
    """Authorization server metadata (RFC 8414)."""
    settings = _runtime(request).settings
    base = settings.public_base_url.rstrip("/")
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "registration_endpoint": f"{base}/oauth/register",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "scopes_supported": sorted(SCOPE_TIERS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["vi", "en"],
    }


@router.get("/.well-known/jwks.json", operation_id="jwks")
async def jwks(request: Request) -> Response:
    """The public keys that verify access tokens (RFC 7517), retired keys included until their tokens expire."""
    keys = await _runtime(request).codec.keys.jwks()
    return OrjsonResponse(keys, headers={"Cache-Control": "public, max-age=300"})

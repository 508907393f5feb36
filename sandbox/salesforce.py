"""A local Salesforce REST API over HTTPS that simple-salesforce runs against unchanged.

`create_app` builds the ASGI app: OAuth and SOAP logins, sObjects, SOQL, collections, the
``Sforce-Limit-Info`` header with a real daily allocation, and fault injection. Test and
operator endpoints live under ``/_sandbox`` and need no auth:

- ``GET|POST /_sandbox/faults``: `FaultSettings` (429 bursts become Salesforce's own
  ``REQUEST_LIMIT_EXCEEDED`` 403; ``expire_sessions`` revokes every issued session once).
- ``GET|POST /_sandbox/locks``: ``{"count", "rate"}``: writes that fail UNABLE_TO_LOCK_ROW.
- ``GET|POST /_sandbox/limits``: ``{"allocation", "used"}`` of the daily API requests.
- ``POST /_sandbox/connected-apps``: ``{"consumer_key", "consumer_secret"?,
  "certificate"? (PEM certificate or public key for JWT), "run_as"?}``.
- ``POST /_sandbox/credentials``: ``{"username", "password", "security_token"}``.
- ``GET /_sandbox/opportunities/{id}/activity``: the opportunity with its tasks, notes and
  orders; "notes" are classic Notes plus the completed Tasks logged as timeline entries
  (``Handoff_Kind__c = 'note'``, shown with ``Title``/``Body`` from Subject/Description).
- ``POST .../composite`` (25 subrequests, one API call), ``.../composite/batch`` (25
  independent subrequests, each one call), ``.../composite/tree/{object}`` (a record tree
  in one transaction) and ``.../composite/sobjects`` (collections of up to 200).
- ``GET /_sandbox/stats``, ``POST /_sandbox/stats/reset``: request counts by method + path.
- ``GET /_sandbox/stats/calls``: ``{"total", "subrequests"}``: API calls as the daily
  allocation counts them (a composite is one call, a composite batch one per subrequest;
  logins are not API calls), and each composite or batch subrequest by method and route
  with its sObject named. Reset with the request counts.
- ``POST /_sandbox/lost-responses``: ``{"count"}``: the next N API writes (not queries,
  not a composite of GETs) are applied, then answered 504 as if the answer were lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import trustme
import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.common import FaultControls, LostResponses, add_fault_routes
from sandbox.salesforce_auth import ORG_ID, Auth, Sessions
from sandbox.salesforce_composite import Composite
from sandbox.salesforce_errors import MethodNotAllowed, MultipleMatches, SfError
from sandbox.salesforce_query import QueryApi
from sandbox.salesforce_rest import DataApi, SandboxState
from sandbox.salesforce_schema import API_USERNAME
from sandbox.salesforce_store import Store
from sandbox.salesforce_tree import Tree

log = structlog.get_logger(__name__)
CA_FILE = "sandbox-ca.pem"
STATE_FILE = "salesforce-sandbox.sqlite3"


@dataclass(frozen=True)
class TlsFiles:
    """The sandbox's CA certificate (for clients) and server certificate and key."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path


class LockFaults(BaseModel):
    """Writes that fail with UNABLE_TO_LOCK_ROW: the next `count`, then a share `rate`."""

    count: int = Field(default=0, ge=0)
    rate: float = Field(default=0.0, ge=0.0, le=1.0)


class Limits(BaseModel):
    """The daily API request allocation and how much of it is used."""

    allocation: int = Field(default=15_000, ge=1)
    used: int = Field(default=0, ge=0)


class ConnectedApp(BaseModel):
    """A connected app: secret for client credentials, certificate for JWT bearer."""

    consumer_key: str
    consumer_secret: str | None = None
    certificate: str | None = None
    run_as: str = API_USERNAME


class PasswordCredentials(BaseModel):
    """A user's password and security token for the SOAP and password flows."""

    username: str
    password: str
    security_token: str = ""


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code, "fields": []}], status)


def create_app(
    store_path: Path | None,
    token: str = "handoff-sandbox",  # noqa: S107 - the documented sandbox token
    faults: FaultControls | None = None,
    api_version: str = "59.0",
) -> FastAPI:
    """The sandbox app; `store_path` None keeps the org in memory."""
    store = Store(store_path)
    api_user = next(u["Id"] for u in store.records("User") if u["Username"] == API_USERNAME)
    sessions = Sessions(static_token=token, static_user=str(api_user))
    auth = Auth(store, sessions, api_version)
    state = SandboxState(store, auth, faults or FaultControls(), api_version)
    data = DataApi(state)
    app = FastAPI(title="Handoff Salesforce sandbox", openapi_url=None, docs_url=None)
    app.state.sandbox = state

    @app.exception_handler(SfError)
    async def sf_error(_: Request, exc: Exception) -> Response:
        if isinstance(exc, MultipleMatches):
            return JSONResponse([state.url(exc.obj, rid) for rid in exc.ids], 300)
        assert isinstance(exc, SfError)
        response = JSONResponse(exc.body(), status_code=exc.status)
        if isinstance(exc, MethodNotAllowed):
            response.headers["Allow"] = exc.allowed
        return response

    _add_error_handlers(app)

    @app.middleware("http")
    async def salesforce_edge(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/services/"):
            return await call_next(request)
        response = await _edge(state, request, call_next)
        if _lost(state, request, response):
            response = _error(504, "GATEWAY_TIMEOUT", "The upstream response was lost.")
        template = getattr(request.state, "template", None)
        key = path if template is None else f"/services/data/v{{ver}}/{template}"
        with state.mutex:
            state.stats[f"{request.method} {key}"] += 1
            state.calls += path.startswith("/services/data/v")
            usage = f"api-usage={state.used}/{state.allocation}"
        if path.startswith("/services/data"):
            response.headers["Sforce-Limit-Info"] = usage
        return response

    prefix = "/services/data/v{ver}"
    app.add_api_route("/services/oauth2/token", auth.token, methods=["POST"])
    app.add_api_route("/services/oauth2/userinfo", _userinfo(state), methods=["GET"])
    app.add_api_route("/services/Soap/u/{ver}", auth.soap_login, methods=["POST"])
    app.add_api_route("/services/data", _versions(api_version), methods=["GET"])
    queries = QueryApi(state)
    for path in ("/query", "/query/", "/queryAll", "/queryAll/", "/query/{locator}"):
        app.add_api_route(prefix + path, queries.query, methods=["GET"])
    for path in ("/search", "/search/"):
        app.add_api_route(prefix + path, queries.search, methods=["GET"])
    app.add_api_route(prefix + "/limits/", data.limits, methods=["GET"])
    composite = Composite(data)
    app.add_api_route(prefix + "/composite", composite.handle, methods=["POST"])
    app.add_api_route(prefix + "/composite/batch", composite.batch, methods=["POST"])
    app.add_api_route(prefix + "/composite/tree/{object}", Tree(data).handle, methods=["POST"])
    # create, update and delete collections; upsert by an external id is PATCH only
    app.add_api_route(
        prefix + "/composite/sobjects", data.collection, methods=["POST", "PATCH", "DELETE"]
    )
    app.add_api_route(
        prefix + "/composite/sobjects/{object}/{field}", data.collection, methods=["PATCH"]
    )
    sobject_methods = ["GET", "POST", "PATCH", "DELETE"]
    for path in ("/sobjects", "/sobjects/", "/sobjects/{rest:path}"):
        app.add_api_route(prefix + path, data.sobjects, methods=sobject_methods)
    _add_control_routes(app, state)
    app.add_middleware(_UnknownException)  # outermost: also covers the edge middleware
    return app


async def _edge(
    state: SandboxState, request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Faults, session expiry and the daily allocation, before the handler runs."""
    faults = state.faults
    await faults.delay()
    if faults.settings.expire_sessions:
        state.auth.sessions.expire_all()
        faults.set(faults.settings.model_copy(update={"expire_sessions": False}))
    fault = faults.pick()
    if fault is not None and fault.status == 429:
        return _error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    if fault is not None and fault.status == 503:
        return _error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.")
    if fault is not None:
        return _error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
    if request.url.path.startswith("/services/data/v"):
        with state.mutex:
            if state.used >= state.allocation:
                return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            state.used += 1
    return await call_next(request)


def _lost(state: SandboxState, request: Request, response: Response) -> bool:
    """A successful API write whose answer is to be lost (`/_sandbox/lost-responses`)."""
    if request.method == "GET" or not request.url.path.startswith("/services/data/v"):
        return False
    if response.status_code >= 300 or getattr(request.state, "read_only", False):
        return False
    return state.lose_this_response()


def _add_error_handlers(app: FastAPI) -> None:
    """Answer every framework error in Salesforce's own shape: a list of errorCode/message."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
            response = _error(405, "METHOD_NOT_ALLOWED", message)
            if allowed:
                response.headers["Allow"] = allowed
            return response
        if exc.status_code == 404:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        return _error(exc.status_code, "INVALID_REQUEST", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _error(400, "JSON_PARSER_ERROR", problems or "malformed request body")


class _UnknownException:
    """Any exception that escapes a handler: Salesforce's 500 UNKNOWN_EXCEPTION, never HTML.

    A plain ASGI middleware rather than an ``Exception`` handler, which Starlette re-raises
    after answering (closing the client's keep-alive connection).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            log.exception("salesforce_sandbox_unknown_exception")
            message = f"An unexpected error occurred: {type(exc).__name__}"
            await _error(500, "UNKNOWN_EXCEPTION", message)(scope, receive, send)


def _userinfo(state: SandboxState) -> Callable[[Request], Awaitable[Response]]:
    async def userinfo(request: Request) -> Response:
        try:
            user_id = state.auth.authenticate(request)
        except SfError:
            return JSONResponse({"error": "Bad_OAuth_Token"}, status_code=403)
        user = state.store.get("User", user_id)
        return JSONResponse(
            {
                "user_id": user_id,
                "organization_id": ORG_ID,
                "preferred_username": user["Username"],
                "email": user["Email"],
            }
        )

    return userinfo


def _versions(version: str) -> Callable[[], Awaitable[Response]]:
    async def versions() -> Response:
        return JSONResponse(
            [{"label": "Sandbox", "url": f"/services/data/v{version}", "version": version}]
        )

    return versions


def _add_control_routes(app: FastAPI, state: SandboxState) -> None:
    add_fault_routes(app, state.faults)

    @app.get("/_sandbox/locks")
    def get_locks() -> LockFaults:
        return LockFaults(count=state.lock_count, rate=state.lock_rate)

    @app.post("/_sandbox/locks")
    def set_locks(locks: LockFaults) -> LockFaults:
        with state.mutex:
            state.lock_count, state.lock_rate = locks.count, locks.rate
        return locks

    @app.get("/_sandbox/limits")
    def get_limits() -> Limits:
        return Limits(allocation=state.allocation, used=state.used)

    @app.post("/_sandbox/limits")
    def set_limits(limits: Limits) -> Limits:
        with state.mutex:
            state.allocation, state.used = limits.allocation, limits.used
        return limits

    @app.post("/_sandbox/connected-apps", status_code=201)
    def register_app(body: ConnectedApp) -> dict[str, str]:
        state.auth.credentials.register_app(
            body.consumer_key, body.consumer_secret, body.certificate, body.run_as
        )
        return {"consumer_key": body.consumer_key}

    @app.post("/_sandbox/credentials", status_code=204)
    def set_credentials(body: PasswordCredentials) -> None:
        state.auth.credentials.set_password(body.username, body.password, body.security_token)

    @app.get("/_sandbox/opportunities/{opportunity_id}/activity")
    def activity(opportunity_id: str) -> dict[str, Any]:
        try:
            opp = state.store.get("Opportunity", opportunity_id)
        except SfError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)  # type: ignore[return-value]
        rid = opp["Id"]
        tasks = state.store.find("Task", "WhatId", rid)
        logged = [t for t in tasks if t.get("Handoff_Kind__c") == "note"]
        return {
            "opportunity": opp,
            "tasks": [t for t in tasks if t not in logged],
            "notes": state.store.find("Note", "ParentId", rid)
            + [t | {"Title": t["Subject"], "Body": t["Description"]} for t in logged],
            "orders": state.store.find("Order", "OpportunityId", rid),
        }

    @app.get("/_sandbox/stats")
    def stats() -> dict[str, int]:
        with state.mutex:
            return dict(state.stats)

    @app.get("/_sandbox/stats/calls")
    def call_stats() -> dict[str, Any]:
        with state.mutex:
            return {"total": state.calls, "subrequests": dict(state.subrequests)}

    @app.post("/_sandbox/stats/reset", status_code=204)
    def reset_stats() -> None:
        with state.mutex:
            state.stats.clear()
            state.subrequests.clear()
            state.calls = 0

    @app.post("/_sandbox/lost-responses")
    def lose_responses(body: LostResponses) -> LostResponses:
        with state.mutex:
            state.lost_responses = body.count
        return body


def make_ca(state_dir: Path) -> TlsFiles:
    """Create (or reuse) a local CA and a server certificate for 127.0.0.1 and localhost.

    The CA goes to ``state_dir/sandbox-ca.pem`` so any client can trust the sandbox.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_pem=state_dir / CA_FILE,
        cert_pem=state_dir / "salesforce-sandbox-cert.pem",
        key_pem=state_dir / "salesforce-sandbox-key.pem",
    )
    if all(p.exists() for p in (files.ca_pem, files.cert_pem, files.key_pem)):
        return files
    ca = trustme.CA(organization_name="Handoff sandbox CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(files.ca_pem))
    server.private_key_pem.write_to_path(str(files.key_pem))
    files.key_pem.chmod(0o600)
    with files.cert_pem.open("wb") as out:
        for blob in server.cert_chain_pems:
            out.write(blob.bytes())
    return files


def run(
    port: int = 8092,
    state_dir: Path = Path(".handoff"),
    token: str = "handoff-sandbox",  # noqa: S107 - the documented sandbox token
) -> None:
    """Serve the sandbox over HTTPS in the foreground, its org in the state folder."""
    tls = make_ca(state_dir)
    app = create_app(state_dir / STATE_FILE, token=token)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(tls.cert_pem),
        ssl_keyfile=str(tls.key_pem),
        log_level="info",
    )

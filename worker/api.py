"""The Handoff HTTP API: approvals, deal actions, status and the stall board, plus the
web pages (`worker/web/`), signed approval links, health checks and `/metrics`.

Every action goes through the workflows' validated updates and names the actor from
the credential, never from the body, so a caller can only act as themselves:
a refusal about who may act is a 403, any other refusal a 409, an unknown deal a 404,
all with `{"error": ..., "reason": ...}`. The OpenAPI schema is at `/openapi.json`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path as FsPath
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from worker import actions
from worker.actions import ActionError, Refused
from worker.auth import Authenticator, Identity, current_user
from worker.board import StallBoard, stall_board
from worker.ids import valid_deal_path
from worker.limits import install_limits
from worker.links import SignedLinks
from worker.logging import bind_deal_context, register_secrets
from worker.metrics import CONTENT_TYPE, ApiMetrics
from worker.pending import EMAIL_PATTERN, PendingItem, pending_approvals
from worker.scopes import OutOfScope, approver_in_scope, check_can_read, out_of_scope_error
from worker.settings import Settings
from workflows.messages import DealStatus, Name, Reason, Receipt
from workflows.names import Msg, lead_to_cash_id

log = structlog.get_logger("handoff.api")
WEB = FsPath(__file__).parent / "web"

CrmPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="hubspot, ...")]
DealPath = Annotated[str, Path(min_length=1, max_length=128, description="The CRM's deal id.")]
User = Annotated[Identity, Depends(current_user)]


class Body(BaseModel):
    """Request bodies refuse unknown fields (an `approver` or `by` in a body is a 422)."""

    model_config = ConfigDict(extra="forbid")


class DecisionBody(Body):
    reason: Reason = Field(description="Why: required, recorded and written to the CRM.")


class ExceptionBody(Body):
    kind: Name = Field(description="scope_change, credit_hold, legal_review, ...")
    note: Reason


class EvidenceBody(Body):
    kind: Name = Field(description="budget_confirmed, contract_signed, ...")
    ref: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=2000)


class AcceptBody(Body):
    team: Name


class TermsBody(Body):
    discount_percent: float | None = Field(default=None, ge=0, le=100)
    amount: float | None = Field(default=None, gt=0)


class ErrorBody(BaseModel):
    """Every API error: a short code and the reason in words."""

    error: str
    reason: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown credentials."},
    403: {"model": ErrorBody, "description": "Refused: you may not do this."},
    404: {"model": ErrorBody, "description": "No handoff for this deal."},
    409: {"model": ErrorBody, "description": "Refused: not possible in the handoff's state."},
}

router = APIRouter(prefix="/api", responses=ERRORS, dependencies=[Depends(valid_deal_path)])


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def metrics_of(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


async def act(
    request: Request, user: Identity, crm: str, deal_id: str, message: Msg, payload: dict[str, Any]
) -> Receipt:
    """Send one action as `user`; count and log refusals. Shared with the web pages."""
    bind_deal_context(
        crm=crm, deal_id=deal_id, workflow_id=lead_to_cash_id(crm, deal_id), approver=user.email
    )
    try:
        receipt = await actions.send(client_of(request), crm, deal_id, message, payload)
    except Refused as err:
        metrics_of(request).count_refusal(message, err.reason_class)
        log.info("action refused", message=message, reason=err.reason, user=user.email)
        raise
    log.info("action accepted", message=message, detail=receipt.detail, user=user.email)
    return receipt


@router.get("/approvals", tags=["approvals"])
async def list_approvals(
    request: Request,
    user: User,
    approver: Annotated[
        str | None, Query(pattern=EMAIL_PATTERN, description="Only this approver's items.")
    ] = None,
) -> list[PendingItem]:
    """Pending discount approvals, oldest first: deal, tier, approvers, age and due time.
    Your own only (403 `out_of_scope` for another's), unless you are in an ops role."""
    approver = approver_in_scope(request, user, approver)
    return await pending_approvals(client_of(request), approver)


@router.post("/deals/{crm}/{deal_id}/approve", tags=["approvals"])
async def approve(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: DecisionBody
) -> Receipt:
    """Approve the pending tier as the authenticated user (who must be asked for it)."""
    return await act(
        request, user, crm, deal_id, Msg.APPROVE, {"approver": user.email, "reason": body.reason}
    )


@router.post("/deals/{crm}/{deal_id}/reject", tags=["approvals"])
async def reject(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: DecisionBody
) -> Receipt:
    """Reject the pending tier as the authenticated user, with the reason."""
    return await act(
        request, user, crm, deal_id, Msg.REJECT, {"approver": user.email, "reason": body.reason}
    )


@router.post("/deals/{crm}/{deal_id}/exceptions", tags=["deals"])
async def raise_exception(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: ExceptionBody
) -> Receipt:
    """Raise an exception (pauses the stage clock and routes it to its owner)."""
    return await act(
        request,
        user,
        crm,
        deal_id,
        Msg.RAISE_EXCEPTION,
        {"kind": body.kind, "by": user.email, "note": body.note},
    )


@router.post("/deals/{crm}/{deal_id}/exceptions/resolve", tags=["deals"])
async def resolve_exception(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: ExceptionBody
) -> Receipt:
    """Resolve an open exception (its owner, escalation target or the deal owner)."""
    return await act(
        request,
        user,
        crm,
        deal_id,
        Msg.RESOLVE_EXCEPTION,
        {"kind": body.kind, "by": user.email, "note": body.note},
    )


@router.post("/deals/{crm}/{deal_id}/evidence", tags=["deals"])
async def add_evidence(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: EvidenceBody
) -> Receipt:
    """Record typed evidence given by the authenticated user."""
    payload = {"kind": body.kind, "by": user.email, "ref": body.ref, "note": body.note}
    return await act(
        request,
        user,
        crm,
        deal_id,
        Msg.ADD_EVIDENCE,
        {k: v for k, v in payload.items() if v is not None},
    )


@router.post("/deals/{crm}/{deal_id}/accept", tags=["deals"])
async def accept_handoff(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: AcceptBody
) -> Receipt:
    """Accept a handoff for your team."""
    return await act(
        request, user, crm, deal_id, Msg.ACCEPT_HANDOFF, {"team": body.team, "by": user.email}
    )


@router.post("/deals/{crm}/{deal_id}/terms", tags=["deals"])
async def update_terms(
    request: Request, user: User, crm: CrmPath, deal_id: DealPath, body: TermsBody
) -> Receipt:
    """Propose new terms (the deal owner or sales manager); affected approvals re-run."""
    payload = {"by": user.email, **body.model_dump(exclude_none=True)}
    return await act(request, user, crm, deal_id, Msg.UPDATE_TERMS, payload)


@router.get("/deals/{crm}/{deal_id}/status", tags=["deals"])
async def deal_status(request: Request, user: User, crm: CrmPath, deal_id: DealPath) -> DealStatus:
    """Where the handoff stands: stage, what it waits on, from whom, until when, history.
    Only for a deal you own or act on (403 `out_of_scope`), unless you are in an ops role."""
    st = await actions.get_status(client_of(request), crm, deal_id)
    check_can_read(request, user, st)
    return st


@router.get("/stuck", tags=["ops"])
async def stuck(request: Request, user: User) -> StallBoard:
    """The stall board: open handoffs by what they wait on, oldest first, with SLA state."""
    return await stall_board(client_of(request))


def _error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status)


async def _action_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ActionError)
    code = {403: "refused", 409: "refused", 404: "not_found"}.get(exc.status, "error")
    if exc.status == 409 and not isinstance(exc, Refused):
        code = "ended"
    return _error(exc.status, code, exc.reason)


class RequestMetrics:
    """ASGI middleware: count and time requests by route template, fresh log context."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        started, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], route, status[0], time.perf_counter() - started
            )


def create_app(
    settings: Settings, client: Client, *, extra_routers: Sequence[APIRouter] = ()
) -> FastAPI:
    """The API and web app bound to a Temporal client (see the module docstring)."""
    from worker.web.link_pages import router as link_router
    from worker.web.pages import router as page_router
    from worker.web.render import templates

    register_secrets(
        *(t.get_secret_value() for t in settings.api_tokens.values()),
        settings.link_secret.get_secret_value() if settings.link_secret else None,
    )
    app = FastAPI(
        title="Handoff",
        version="1",
        summary="Approvals, deal actions and the stall board for lead-to-cash handoffs.",
    )
    app.state.settings, app.state.client = settings, client
    app.state.auth = Authenticator(settings)
    app.state.metrics = ApiMetrics()
    app.state.links = SignedLinks.from_settings(settings)
    app.state.templates = templates()
    app.add_exception_handler(ActionError, _action_error)
    app.add_exception_handler(OutOfScope, out_of_scope_error)
    install_limits(app, settings)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.include_router(router)
    app.include_router(page_router)
    app.include_router(link_router)
    for extra in extra_routers:
        app.include_router(extra)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorBody}})
    async def readyz() -> Response:
        """Temporal is reachable (503 otherwise)."""
        try:
            await client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=3)
            )
        except Exception as exc:  # any failure to reach Temporal means "not ready"
            return _error(503, "unavailable", f"Temporal is not reachable: {exc}")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE)

    return app


async def run_api(settings: Settings, *, extra_routers: Sequence[APIRouter] = ()) -> None:
    """Connect to Temporal and serve the API on `settings.api_host:api_port` until stopped."""
    import uvicorn

    from worker.ingress.temporal_starter import ingress_routers
    from worker.proxies import behind_proxies
    from worker.temporal import connect

    client = await connect(settings)
    routers = [*ingress_routers(settings, client), *extra_routers]
    app = create_app(settings, client, extra_routers=routers)
    config = uvicorn.Config(
        behind_proxies(app, settings.trusted_proxies),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=False,  # behind_proxies: only from HANDOFF_TRUSTED_PROXIES
        server_header=False,
    )
    log.info("api started", url=settings.public_url, temporal=settings.temporal_address)
    await uvicorn.Server(config).serve()

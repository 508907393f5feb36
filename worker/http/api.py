"""The Handoff JSON API: approvals, deal actions, status and the stall board.

The app that serves it with the web pages, signed links, health checks and `/metrics`
is assembled in `worker/processes/api.py`.

Every action goes through the workflows' validated updates and names the actor from
the credential, never from the body, so a caller can only act as themselves:
a refusal about who may act is a 403, any other refusal a 409, an unknown deal a 404,
all with `{"error": ..., "reason": ...}`. The OpenAPI schema is at `/openapi.json`.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from worker.client import actions
from worker.client.actions import ActionError, Refused
from worker.client.board import StallBoard, stall_board
from worker.client.pending import EMAIL_PATTERN, PendingItem, pending_approvals
from worker.http.auth import Identity, current_user
from worker.http.deps import act, client_of
from workflows.messages import DealStatus, Name, Reason, Receipt
from workflows.names import Msg

log = structlog.get_logger("handoff.api")

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

router = APIRouter(prefix="/api", responses=ERRORS)


@router.get("/approvals", tags=["approvals"])
async def list_approvals(
    request: Request,
    user: User,
    approver: Annotated[
        str | None, Query(pattern=EMAIL_PATTERN, description="Only this approver's items.")
    ] = None,
) -> list[PendingItem]:
    """Pending discount approvals, oldest first: deal, tier, approvers, age and due time."""
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
    """Where the handoff stands: stage, what it waits on, from whom, until when, history."""
    return await actions.get_status(client_of(request), crm, deal_id)


@router.get("/stuck", tags=["ops"])
async def stuck(request: Request, user: User) -> StallBoard:
    """The stall board: open handoffs by what they wait on, oldest first, with SLA state."""
    return await stall_board(client_of(request))


def error_response(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status)


async def action_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ActionError)
    code = {403: "refused", 409: "refused", 404: "not_found"}.get(exc.status, "error")
    if exc.status == 409 and not isinstance(exc, Refused):
        code = "ended"
    return error_response(exc.status, code, exc.reason)

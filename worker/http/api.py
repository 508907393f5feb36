"""The Handoff JSON API: approvals, handoff actions, status and the stall board.

Every handoff type is addressed as `/api/handoffs/{type}/{crm}/{deal_id}/...`; the
`/api/deals/{crm}/{deal_id}/...` routes from before types stay, for lead-to-cash.
Every action goes through the one client path's validated updates and names the actor
from the credential, never from the body, so a caller can only act as themselves.
A refusal carries its typed code and maps to a status through one table
(`worker.http.errors.HTTP_STATUS`): `not_authorised` 403, `not_pending`, `duplicate`,
`terms_fixed` and `ended` 409, `invalid` and `unknown_message` 422, `too_large` 413;
an unknown handoff is a 404. Bodies are `{"error", "reason", "code"?}`. The app that
serves this router is assembled in `worker/processes/api.py`; the OpenAPI schema is at
`/openapi.json`.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate the route signatures
# that `_handoff_routes` builds in a closure (their `Ref` names a local dependency).

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from worker.client import handoffs
from worker.client.board import StallBoard, stall_board
from worker.client.handoffs import EMAIL_PATTERN, HandoffRef, PendingItem, pending_approvals
from worker.http.auth import Identity, current_user
from worker.http.deps import act, client_of, lead_to_cash_ref, typed_ref, valid_deal_path
from worker.http.errors import ErrorBody
from worker.scopes import approver_in_scope, check_can_read, readable_by
from workflows.messages import DealStatus, Name, Reason, Receipt
from workflows.names import Msg

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


class QuestionBody(Body):
    question: Reason = Field(description="What the deal desk asks the rep.")


class AnswerBody(Body):
    answer: Reason = Field(description="The rep's answer; it goes back to who asked.")


class TermsBody(Body):
    discount_percent: float | None = Field(default=None, ge=0, le=100)
    amount: float | None = Field(default=None, gt=0)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown credentials."},
    403: {"model": ErrorBody, "description": "Refused (not_authorised): you may not do this."},
    404: {"model": ErrorBody, "description": "No handoff of this type for this deal."},
    409: {
        "model": ErrorBody,
        "description": "Refused (not_pending, duplicate, terms_fixed, ended): not possible "
        "in the handoff's state.",
    },
    413: {"model": ErrorBody, "description": "Refused (too_large): the payload is too big."},
    422: {"model": ErrorBody, "description": "Invalid body, or refused (invalid)."},
}

router = APIRouter(prefix="/api", responses=ERRORS, dependencies=[Depends(valid_deal_path)])


@router.get("/approvals", tags=["approvals"])
async def list_approvals(
    request: Request,
    user: User,
    approver: Annotated[
        str | None, Query(pattern=EMAIL_PATTERN, description="Only this approver's items.")
    ] = None,
) -> list[PendingItem]:
    """Pending approvals of every handoff type, oldest first: handoff, tier, approvers,
    age and due time. Your own only (403 `out_of_scope` for another's), unless you are
    in an ops role."""
    approver = approver_in_scope(request, user, approver)
    return await pending_approvals(client_of(request), approver)


@router.get("/stuck", tags=["ops"])
async def stuck(request: Request, user: User) -> StallBoard:
    """The stall board: open handoffs of every type by what they wait on, oldest first;
    the handoffs you own or act on, unless you are in an ops role."""
    return await stall_board(client_of(request), visible=readable_by(request, user))


def _handoff_routes(prefix: str, resolve: Callable[..., HandoffRef], tag: str) -> None:
    """The action and status routes under `prefix`, for the handoff `resolve` names."""
    Ref = Annotated[HandoffRef, Depends(resolve)]

    @router.post(f"{prefix}/approve", tags=[tag])
    async def approve(request: Request, user: User, ref: Ref, body: DecisionBody) -> Receipt:
        """Approve the pending tier as the authenticated user (who must be asked for it).
        The receipt says which tier is asked next (none: the desk is passed)."""
        payload = {"approver": user.email, "reason": body.reason}
        return await act(request, user, ref, Msg.APPROVE, payload)

    @router.post(f"{prefix}/reject", tags=[tag])
    async def reject(request: Request, user: User, ref: Ref, body: DecisionBody) -> Receipt:
        """Reject the pending tier as the authenticated user, with the reason."""
        payload = {"approver": user.email, "reason": body.reason}
        return await act(request, user, ref, Msg.REJECT, payload)

    @router.post(f"{prefix}/exceptions", tags=[tag])
    async def raise_exception(
        request: Request, user: User, ref: Ref, body: ExceptionBody
    ) -> Receipt:
        """Raise an exception (pauses the stage clock and routes it to its owner)."""
        payload = {"kind": body.kind, "by": user.email, "note": body.note}
        return await act(request, user, ref, Msg.RAISE_EXCEPTION, payload)

    @router.post(f"{prefix}/exceptions/resolve", tags=[tag])
    async def resolve_exception(
        request: Request, user: User, ref: Ref, body: ExceptionBody
    ) -> Receipt:
        """Resolve an open exception (its owner, escalation target or the deal owner)."""
        payload = {"kind": body.kind, "by": user.email, "note": body.note}
        return await act(request, user, ref, Msg.RESOLVE_EXCEPTION, payload)

    @router.post(f"{prefix}/evidence", tags=[tag])
    async def add_evidence(request: Request, user: User, ref: Ref, body: EvidenceBody) -> Receipt:
        """Record typed evidence given by the authenticated user."""
        payload = {"by": user.email, **body.model_dump(exclude_none=True)}
        return await act(request, user, ref, Msg.ADD_EVIDENCE, payload)

    @router.post(f"{prefix}/accept", tags=[tag])
    async def accept_handoff(request: Request, user: User, ref: Ref, body: AcceptBody) -> Receipt:
        """Accept a handoff for your team."""
        payload = {"team": body.team, "by": user.email}
        return await act(request, user, ref, Msg.ACCEPT_HANDOFF, payload)

    @router.post(f"{prefix}/questions", tags=[tag])
    async def request_info(request: Request, user: User, ref: Ref, body: QuestionBody) -> Receipt:
        """Ask the rep a question as an approver of the pending tier; the tier waits on
        the deal owner's answer (its own SLA), then comes back to you."""
        payload = {"approver": user.email, "question": body.question}
        return await act(request, user, ref, Msg.REQUEST_INFO, payload)

    @router.post(f"{prefix}/questions/answer", tags=[tag])
    async def answer_info(request: Request, user: User, ref: Ref, body: AnswerBody) -> Receipt:
        """Answer the open deal-desk question (the deal owner); it goes to who asked."""
        payload = {"by": user.email, "answer": body.answer}
        return await act(request, user, ref, Msg.ANSWER_INFO, payload)

    @router.post(f"{prefix}/terms", tags=[tag])
    async def update_terms(request: Request, user: User, ref: Ref, body: TermsBody) -> Receipt:
        """Propose new terms (the deal owner or sales manager); affected approvals re-run."""
        payload = {"by": user.email, **body.model_dump(exclude_none=True)}
        return await act(request, user, ref, Msg.UPDATE_TERMS, payload)

    @router.get(f"{prefix}/status", tags=[tag])
    async def handoff_status(request: Request, user: User, ref: Ref) -> DealStatus:
        """Where the handoff stands: stage, what it waits on, from whom, until when, history."""
        st = await handoffs.status(client_of(request), ref)
        check_can_read(request, user, st)  # a deal you own or act on, unless ops
        return st


_handoff_routes("/handoffs/{handoff_type}/{crm}/{deal_id}", typed_ref, "handoffs")
_handoff_routes("/deals/{crm}/{deal_id}", lead_to_cash_ref, "deals (lead-to-cash)")

"""Web pages for managers and ops: sign in, the approval inbox, a handoff of any type
(`/handoffs/{type}/{crm}/{deal_id}`), the stall board.

Pages use the API's authentication: the bearer token kept in an HttpOnly,
`SameSite=Strict` cookie set by `/login`, or the trusted proxy header. State changes
only on POST, and every form carries a CSRF token tied to the session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from worker.client import handoffs
from worker.client.board import item_for, stall_board
from worker.client.handoffs import (
    HandoffError,
    HandoffNotFound,
    HandoffRef,
    Refused,
    pending_approvals,
)
from worker.http.auth import SESSION_COOKIE, Identity, Unauthenticated, authenticator
from worker.http.deps import act, lead_to_cash_ref, record_refusal, typed_ref, valid_deal_path
from worker.http.errors import status_of
from worker.http.render import page
from worker.scopes import OutOfScope, check_can_read, readable_by
from workflows.messages import Receipt, SurfaceRefusalIn
from workflows.names import Msg, Refusal

router = APIRouter(include_in_schema=False, dependencies=[Depends(valid_deal_path)])
CRM_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


def _safe_next(target: str | None, default: str = "/inbox") -> str:
    """Only same-site paths: never redirect to another host after a form."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _login_redirect(request: Request, clear: bool = False) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={target}", status_code=303)
    if clear:
        response.delete_cookie(SESSION_COOKIE)
    return response


def _who(request: Request) -> Identity | Response:
    """The signed-in user, or a redirect to the sign-in page."""
    try:
        identity = authenticator(request).identify(request)
    except Unauthenticated:
        return _login_redirect(request, clear=True)
    return identity if identity is not None else _login_redirect(request)


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/inbox", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/inbox"
) -> Response:
    auth = authenticator(request)
    if auth.user_for_token(token.strip()) is None:
        return page(
            request, "login.html", 401, next=_safe_next(next), error="That token is not valid."
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=auth.secure_cookies,
        max_age=12 * 3600,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    who = _who(request)
    if isinstance(who, Identity) and not who.csrf_ok(csrf):
        return page(
            request,
            "message.html",
            403,
            user=who,
            title="Not signed out",
            message="The form was stale. Reload the page and try again.",
            ok=False,
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/inbox")
async def inbox(request: Request) -> Response:
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    items = await pending_approvals(request.app.state.client, who.email)
    return page(request, "inbox.html", user=who, csrf=who.csrf_token(), items=items)


async def _deal_page(
    request: Request,
    who: Identity,
    ref: HandoffRef,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
    outcome: Receipt | None = None,
) -> Response:
    """The handoff's page; after a decision, `outcome` is the workflow's receipt: the tier
    asked next, or the stage the deal moved on to."""
    try:
        st = await handoffs.status(request.app.state.client, ref)
    except HandoffError as err:
        return _no_such_handoff(request, who, err)
    try:
        check_can_read(request, who, st)
    except OutOfScope as err:
        return page(
            request, "message.html", 403, user=who, title="Not yours", message=err.reason, ok=False
        )
    owes = item_for(st, datetime.now(UTC)).owes if not st.done else []
    # the receipt is the ladder's state right after the decision: never offer its form again
    pending = outcome.pending_approval if outcome is not None else st.pending_approval
    can_decide = bool(pending and st.pending_approval and who.email in pending.approvers)
    question = next((q for q in st.conversation if q.answer is None and q.closed is None), None)
    can_answer = question is not None and who.email == st.deal_owner
    return page(
        request,
        "deal.html",
        status,
        user=who,
        csrf=who.csrf_token(),
        st=st,
        htype=ref.type.name,
        owes=owes,
        can_decide=can_decide,
        can_answer=can_answer,
        question=question,
        outcome=outcome,
        error=error,
        done=done,
        history=list(reversed(st.history)),
    )


def _no_such_handoff(request: Request, who: Identity, err: HandoffError) -> Response:
    return page(
        request,
        "message.html",
        status_of(err),
        user=who,
        title="No such handoff",
        message=err.reason,
        ok=False,
    )


def _ref_or_none(handoff_type: str, crm: str, deal_id: str) -> HandoffRef | None:
    try:
        return typed_ref(handoff_type, crm, deal_id)
    except HandoffError:
        return None


@router.get("/handoffs/{handoff_type}/{crm}/{deal_id}")
async def handoff(
    request: Request, handoff_type: str, crm: str, deal_id: str, done: str | None = None
) -> Response:
    """A handoff of any type: where it stands, what is owed, and the decision form."""
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    ref = _ref_or_none(handoff_type, crm, deal_id)
    if ref is None:
        return _no_such_handoff(
            request, who, HandoffNotFound(f"there is no handoff type {handoff_type!r}")
        )
    return await _deal_page(request, who, ref, done=done)


@router.get("/deals/{crm}/{deal_id}")
async def deal(request: Request, crm: str, deal_id: str, done: str | None = None) -> Response:
    """A lead-to-cash handoff at its address from before types."""
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    return await _deal_page(request, who, lead_to_cash_ref(crm, deal_id), done=done)


async def _decide(
    request: Request, ref: HandoffRef, decision: str, reason: str, csrf: str
) -> Response:
    """Approve or reject as the signed-in user, then show the outcome at once: the page
    renders the workflow's receipt (the tier asked next, or the next stage)."""
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    if not who.csrf_ok(csrf):
        attempted, _ = _message_of(decision, who.email, reason.strip() or "-")
        await record_refusal(
            request,
            ref,
            SurfaceRefusalIn(
                message=attempted,
                by=who.email,
                code=Refusal.NOT_AUTHORISED,
                reason="the form was stale or forged (CSRF check failed)",
                surface="web_page",
            ),
        )
        return await _deal_page(
            request,
            who,
            ref,
            status=403,
            error="The form was stale or forged (CSRF check failed). "
            "Nothing was changed; try again.",
        )
    if not reason.strip():
        return await _deal_page(
            request, who, ref, status=422, error="A reason is required. Nothing was changed."
        )
    try:
        message, payload = _message_of(decision, who.email, reason.strip())
        receipt = await act(request, who, ref, message, payload)
    except Refused as err:
        return await _deal_page(
            request,
            who,
            ref,
            status=status_of(err),
            error=f"Refused: {err.reason}. Nothing was changed.",
        )
    except HandoffError as err:
        return _no_such_handoff(request, who, err)
    # the receipt is the ladder's new state, and `status` already shows it (the ladder
    # runs inside the deal's workflow): no waiting for a child to decide
    done = DONE_WORDS[decision]
    return await _deal_page(request, who, ref, done=done, outcome=receipt)


#: What the page's form buttons do: approve, reject, ask the rep (approvers), answer
#: the deal desk (the deal owner). The text box carries the reason, question or answer.
Decision = Literal["approve", "reject", "ask", "answer"]
DONE_WORDS = {
    "approve": "approved",
    "reject": "rejected",
    "ask": "question sent to the rep",
    "answer": "answer sent to the deal desk",
}


def _message_of(decision: str, email: str, text: str) -> tuple[Msg, dict[str, str]]:
    if decision == "ask":
        return Msg.REQUEST_INFO, {"approver": email, "question": text}
    if decision == "answer":
        return Msg.ANSWER_INFO, {"by": email, "answer": text}
    message = Msg.APPROVE if decision == "approve" else Msg.REJECT
    return message, {"approver": email, "reason": text}


@router.post("/handoffs/{handoff_type}/{crm}/{deal_id}/decide")
async def decide(
    request: Request,
    handoff_type: str,
    crm: str,
    deal_id: str,
    decision: Annotated[Decision, Form()],
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject from the inbox or the handoff's page, as the signed-in user."""
    ref = _ref_or_none(handoff_type, crm, deal_id)
    if ref is None:
        who = _who(request)
        if not isinstance(who, Identity):
            return who
        return _no_such_handoff(
            request, who, HandoffNotFound(f"there is no handoff type {handoff_type!r}")
        )
    return await _decide(request, ref, decision, reason, csrf)


@router.post("/deals/{crm}/{deal_id}/decide")
async def decide_lead_to_cash(
    request: Request,
    crm: str,
    deal_id: str,
    decision: Annotated[Decision, Form()],
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The lead-to-cash form address from before types."""
    return await _decide(request, lead_to_cash_ref(crm, deal_id), decision, reason, csrf)


@router.get("/stuck")
async def stuck(request: Request) -> Response:
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    board = await stall_board(request.app.state.client, visible=readable_by(request, who))
    return page(request, "stuck.html", user=who, csrf=who.csrf_token(), board=board)

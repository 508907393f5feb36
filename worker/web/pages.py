"""Web pages for managers and ops: sign in, the approval inbox, a deal, the stall board.

Pages use the API's authentication: the bearer token kept in an HttpOnly,
`SameSite=Strict` cookie set by `/login`, or the trusted proxy header. State changes
only on POST, and every form carries a CSRF token tied to the session.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from worker import actions
from worker.actions import ActionError, Refused
from worker.auth import SESSION_COOKIE, Identity, Unauthenticated, authenticator
from worker.board import item_for, stall_board
from worker.ids import valid_deal_path
from worker.pending import pending_approvals
from worker.scopes import OutOfScope, check_can_read
from worker.web.render import page
from workflows.messages import DealStatus
from workflows.names import Msg

router = APIRouter(include_in_schema=False, dependencies=[Depends(valid_deal_path)])
#: How long a page waits for the workflow to record an accepted action before showing it.
SETTLE_S = 3.0
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
    crm: str,
    deal_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
    st: DealStatus | None = None,
) -> Response:
    try:
        st = st or await actions.get_status(request.app.state.client, crm, deal_id)
    except ActionError as err:
        return page(
            request,
            "message.html",
            err.status,
            user=who,
            title="No such handoff",
            message=err.reason,
            ok=False,
        )
    try:
        check_can_read(request, who, st)
    except OutOfScope as err:
        return page(
            request, "message.html", 403, user=who, title="Not yours", message=err.reason, ok=False
        )
    owes = item_for(st, datetime.now(UTC)).owes if not st.done else []
    can_decide = bool(st.pending_approval and who.email in st.pending_approval.approvers)
    return page(
        request,
        "deal.html",
        status,
        user=who,
        csrf=who.csrf_token(),
        st=st,
        owes=owes,
        can_decide=can_decide,
        error=error,
        done=done,
        history=list(reversed(st.history)),
    )


@router.get("/deals/{crm}/{deal_id}")
async def deal(request: Request, crm: str, deal_id: str, done: str | None = None) -> Response:
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    return await _deal_page(request, who, crm, deal_id, done=done)


async def _settle(request: Request, crm: str, deal_id: str, seen: int) -> None:
    """Wait briefly until the workflow's history shows more than `seen` entries."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        st = await actions.get_status(request.app.state.client, crm, deal_id)
        if len(st.history) + st.history_dropped > seen:
            return
        await asyncio.sleep(0.1)


@router.post("/deals/{crm}/{deal_id}/decide")
async def decide(
    request: Request,
    crm: str,
    deal_id: str,
    decision: Annotated[Literal["approve", "reject"], Form()],
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject from the inbox or the deal page, as the signed-in user."""
    from worker.api import act

    who = _who(request)
    if not isinstance(who, Identity):
        return who
    if not who.csrf_ok(csrf):
        return await _deal_page(
            request,
            who,
            crm,
            deal_id,
            status=403,
            error="The form was stale or forged (CSRF check failed). "
            "Nothing was changed; try again.",
        )
    if not reason.strip():
        return await _deal_page(
            request,
            who,
            crm,
            deal_id,
            status=422,
            error="A reason is required. Nothing was changed.",
        )
    try:
        before = await actions.get_status(request.app.state.client, crm, deal_id)
        message = Msg.APPROVE if decision == "approve" else Msg.REJECT
        await act(
            request, who, crm, deal_id, message, {"approver": who.email, "reason": reason.strip()}
        )
    except Refused as err:
        return await _deal_page(
            request,
            who,
            crm,
            deal_id,
            status=err.status,
            error=f"Refused: {err.reason}. Nothing was changed.",
        )
    except ActionError as err:
        return page(
            request,
            "message.html",
            err.status,
            user=who,
            title="No such handoff",
            message=err.reason,
            ok=False,
        )
    await _settle(request, crm, deal_id, len(before.history) + before.history_dropped)
    done = "approved" if decision == "approve" else "rejected"
    return RedirectResponse(f"/deals/{crm}/{deal_id}?done={done}", status_code=303)


@router.get("/stuck")
async def stuck(request: Request) -> Response:
    who = _who(request)
    if not isinstance(who, Identity):
        return who
    board = await stall_board(request.app.state.client)
    return page(request, "stuck.html", user=who, csrf=who.csrf_token(), board=board)

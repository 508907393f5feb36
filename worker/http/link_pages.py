"""Signed approval links: `GET /links/{token}` confirms, `POST /links/{token}` decides.

A GET never changes anything (mail scanners and link previews follow links). It shows
the deal, the discount, the real margin and asks for the justification. The POST
checks everything again, spends the link, and sends the decision through the
validated update as the link's approver. Every refusal is a page that says why, with
its status: 403 tampered or wrong approver, 410 expired or used, 409 superseded.

A refused POST of a genuine link (its signature verifies and its claims agree, so its
deal can be trusted) is also recorded in the deal's audit trail, with who tried, what
and why (`record_refusal`); a refusal the workflow made itself is recorded there already.
A tampered link names no deal that can be trusted: it is only logged and counted. A GET
never writes anything, not even an audit line (mail scanners follow links).
"""

from __future__ import annotations

from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from temporalio.service import RPCError

from worker.client import handoffs
from worker.client.handoffs import HandoffError, HandoffRef, Refused
from worker.http.auth import Identity, Unauthenticated, authenticator
from worker.http.deps import record_refusal
from worker.http.errors import status_of
from worker.http.links import (
    LinkClaims,
    LinkError,
    LinkSuperseded,
    LinkTampered,
    LinkUsed,
    LinkWrongApprover,
    SignedLinks,
)
from worker.http.render import page
from worker.ids import is_valid_deal_id
from worker.logging import bind_deal_context
from worker.metrics import ApiMetrics
from workflows.messages import DealStatus, SurfaceRefusalIn
from workflows.names import Msg, Refusal

router = APIRouter(include_in_schema=False)
log = structlog.get_logger("handoff.links")


def _signed_in(request: Request) -> Identity | None:
    """Who is signed in, if anyone (a stale cookie does not block a link)."""
    try:
        return authenticator(request).identify(request)
    except Unauthenticated:
        return None


def check_pending(claims: LinkClaims, st: DealStatus, signed_in: Identity | None) -> None:
    """Is this link still the approval the workflow waits for, from this approver?"""
    pending = st.pending_approval
    if st.done or pending is None:
        raise LinkSuperseded(
            "No discount approval is pending on this deal any more: it was decided, recalled, "
            "or the terms changed. Nothing was changed.",
            claims,
        )
    if claims.round != pending.round or claims.round < st.approval_round:
        raise LinkSuperseded(
            f"The terms changed since this link was sent (it was for round {claims.round}; "
            f"the deal is now in round {pending.round}). A new request has been sent to "
            "whoever must approve. Nothing was changed.",
            claims,
        )
    if claims.tier != pending.tier:
        raise LinkSuperseded(
            f"The {claims.tier} tier was already decided; the deal now waits on the "
            f"{pending.tier} tier. Nothing was changed.",
            claims,
        )
    if claims.approver not in pending.approvers:
        raise LinkWrongApprover(
            f"This link was sent to {claims.approver}, who is not an approver of the "
            f"{pending.tier} tier now (asked: {', '.join(pending.approvers)}). "
            "Nothing was changed.",
            claims,
        )
    if signed_in is not None and signed_in.email != claims.approver:
        raise LinkWrongApprover(
            f"This link was sent to {claims.approver}, but you are signed in as "
            f"{signed_in.email}. Only {claims.approver} can use it. Nothing was changed.",
            claims,
        )


def handoff_of(claims: LinkClaims) -> HandoffRef:
    """The handoff a link decides: the one its signed workflow id names, of any type. Its
    crm and deal id claims must agree with that id (else the link is not genuine)."""
    ref = HandoffRef.from_workflow_id(claims.workflow_id)
    if (ref.crm, ref.deal_id) != (claims.crm, claims.deal_id):
        raise LinkTampered("This link's claims disagree with each other: it is not genuine.")
    return ref


async def _checked(
    request: Request, token: str
) -> tuple[SignedLinks, LinkClaims, HandoffRef, DealStatus]:
    links: SignedLinks | None = request.app.state.links
    if links is None:
        raise LinkError("Signed approval links are not enabled on this server.")
    claims = links.verify(token)
    if not is_valid_deal_id(claims.crm, claims.deal_id):
        raise LinkTampered("This link is not valid. Nothing was changed.", claims)
    bind_deal_context(
        crm=claims.crm,
        deal_id=claims.deal_id,
        workflow_id=claims.workflow_id,
        approver=claims.approver,
    )
    ref = handoff_of(claims)
    st = await handoffs.status(request.app.state.client, ref)
    if st.workflow_id != claims.workflow_id:
        raise LinkSuperseded("This link is for another handoff. Nothing was changed.", claims)
    check_pending(claims, st, _signed_in(request))
    return links, claims, ref, st


def _attempted(claims: LinkClaims, action: str = "decide") -> Msg:
    """The message a POST of this link would have sent."""
    if action == "ask":
        return Msg.REQUEST_INFO
    return Msg.APPROVE if claims.decision == "approve" else Msg.REJECT


#: How the deal's audit trail codes each refusal of a genuine link (a tampered one is
#: never recorded there: it names no deal that can be trusted).
_CODES = {
    "used": Refusal.DUPLICATE,
    "wrong_approver": Refusal.NOT_AUTHORISED,
    "superseded": Refusal.NOT_PENDING,
    "expired": Refusal.NOT_PENDING,
}


async def _record(request: Request, err: LinkError, attempted: Msg) -> None:
    """Record a genuine link's refusal in its deal's audit trail: who tried (whoever is
    signed in, else the link's approver), what and why."""
    claims, code = err.claims, _CODES.get(err.why)
    if claims is None or code is None or not is_valid_deal_id(claims.crm, claims.deal_id):
        return
    signed_in = _signed_in(request)
    try:
        ref = handoff_of(claims)
        refusal = SurfaceRefusalIn(
            message=attempted,
            by=signed_in.email if signed_in else claims.approver,
            code=code,
            reason=f"a signed link sent to {claims.approver}: "
            + err.message.removesuffix(" Nothing was changed."),
            surface="signed_link",
        )
    except (LinkError, HandoffError, ValidationError) as exc:
        log.warning("link refusal not recorded in the deal", why=err.why, error=str(exc)[:200])
        return
    await record_refusal(request, ref, refusal)


async def _refused(
    request: Request, err: LinkError | HandoffError, attempted: Msg | None = None
) -> Response:
    """The refusal page. With `attempted` (a POST the workflow never saw), the refusal
    of a genuine link is also recorded in the deal's audit trail."""
    metrics: ApiMetrics = request.app.state.metrics
    if isinstance(err, LinkError):
        metrics.count_link_refusal(err.why)
        log.info("link refused", why=err.why, reason=err.message)
        if attempted is not None:
            await _record(request, err, attempted)
        return page(
            request,
            "message.html",
            err.status,
            title=_TITLES.get(err.why, "Link refused"),
            message=err.message,
            ok=False,
            user=None,
        )
    status = status_of(err)
    metrics.count_link_refusal("not_found" if status == 404 else "ended")
    return page(
        request,
        "message.html",
        status,
        title="No such handoff",
        message=err.reason,
        ok=False,
        user=None,
    )


_TITLES = {
    "tampered": "This link is not valid",
    "expired": "This link has expired",
    "used": "This link was already used",
    "wrong_approver": "This link is not yours to use",
    "superseded": "This request was superseded",
}


@router.get("/links/{token}")
async def confirm(request: Request, token: str) -> Response:
    """The confirmation page: what is being decided, with a required justification."""
    try:
        _, claims, _, st = await _checked(request, token)
    except (LinkError, HandoffError) as err:
        return await _refused(request, err)  # a GET writes nothing, not even an audit line
    return page(
        request,
        "link_confirm.html",
        claims=claims,
        st=st,
        p=st.pending_approval,
        user=None,
        error=None,
    )


@router.post("/links/{token}")
async def decide(
    request: Request,
    token: str,
    reason: Annotated[str, Form()] = "",
    action: Annotated[Literal["decide", "ask"], Form()] = "decide",
) -> Response:
    """Decide as the link's approver, once, if everything still holds; or ask the rep
    a question (the link is not spent: it decides once the answer is back)."""
    try:
        links, claims, ref, st = await _checked(request, token)
    except LinkError as err:
        attempted = _attempted(err.claims, action) if err.claims is not None else None
        return await _refused(request, err, attempted)
    except HandoffError as err:
        return await _refused(request, err)
    if not reason.strip():
        return page(
            request,
            "link_confirm.html",
            422,
            claims=claims,
            st=st,
            p=st.pending_approval,
            user=None,
            error="A reason is required. Nothing was changed.",
        )
    if action == "ask":
        return await _ask(request, claims, ref, st, reason.strip())
    try:
        links.claim(claims)
    except LinkError as err:
        return await _refused(request, err, _attempted(claims))
    message = _attempted(claims)
    try:
        receipt = await handoffs.update(
            request.app.state.client,
            ref,
            message,
            # the workflow remembers the link id: a link decides once, whichever API
            # replica serves it (the local store only answers the common case early)
            {"approver": claims.approver, "reason": reason.strip(), "link_id": claims.id},
        )
    except Refused as err:
        request.app.state.metrics.count_refusal(message, err.code)
        cls = {
            Refusal.NOT_AUTHORISED: LinkWrongApprover,
            Refusal.DUPLICATE: LinkUsed,
        }.get(err.code, LinkSuperseded)
        # the workflow recorded this refusal itself
        return await _refused(request, cls(f"Refused: {err.reason}. Nothing was changed.", claims))
    except HandoffError as err:
        return await _refused(request, err)
    except RPCError:
        links.used.release(claims.id)  # not delivered: the link stays usable
        raise
    log.info("link decision", decision=claims.decision, detail=receipt.detail)
    verb = "Approved" if claims.decision == "approve" else "Rejected"
    return page(
        request,
        "message.html",
        title=f"{verb}, thank you",
        message=f"{verb} the {claims.tier} tier of {st.deal_name or st.deal_id} "
        f"with your reason. The deal's record is updated.",
        ok=True,
        user=None,
    )


async def _ask(
    request: Request, claims: LinkClaims, ref: HandoffRef, st: DealStatus, question: str
) -> Response:
    """The link's approver asks the rep; the tier waits on the answer, then on them."""
    try:
        await handoffs.update(
            request.app.state.client,
            ref,
            Msg.REQUEST_INFO,
            {"approver": claims.approver, "question": question},
        )
    except Refused as err:
        request.app.state.metrics.count_refusal(Msg.REQUEST_INFO, err.code)
        cls = LinkWrongApprover if err.code == Refusal.NOT_AUTHORISED else LinkSuperseded
        # the workflow recorded this refusal itself
        return await _refused(request, cls(f"Refused: {err.reason}. Nothing was changed.", claims))
    except HandoffError as err:
        return await _refused(request, err)
    log.info("link question", tier=claims.tier)
    owner = st.deal_owner or "the deal owner"
    return page(
        request,
        "message.html",
        title="Question sent",
        message=f"Your question on the {claims.tier} tier of {st.deal_name or st.deal_id} "
        f"went to {owner}. You will be told of the answer; this link still decides then.",
        ok=True,
        user=None,
    )

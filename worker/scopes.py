"""Scoped reads: what a token may see through the API.

A person sees their own pending approvals and the deals they own or act on; someone in
a role listed in `HANDOFF_OPS_ROLES` (policy `people:`; default `sales_ops`) sees
everything. Without this, any token holder (a rep's stolen token, a curious insider)
could read every deal's terms, margins and notes and everyone's queue.

A deal counts as one a person acts on when they appear in its status: whoever must act
now, the approvers asked, or anyone named in its evidence, approvals, exceptions,
acceptances or history (the deal owner is there from the first stage on). A refusal is
a 403 with the code `out_of_scope`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from worker.http.auth import Identity
from workflows.messages import DealStatus

OUT_OF_SCOPE = "out_of_scope"


class OutOfScope(Exception):
    """403: the caller may not read this (another person's queue, a deal not theirs)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ops_people(request: Request) -> frozenset[str]:
    """The emails of the policy's ops roles (computed once per app)."""
    cached: frozenset[str] | None = getattr(request.app.state, "ops_people", None)
    if cached is None:
        from worker.policy import load_configured_policy

        settings = request.app.state.settings
        policy = load_configured_policy(settings)
        cached = frozenset(
            email.strip().lower()
            for role in settings.ops_roles
            for email in policy.people.get(role, [])
        )
        request.app.state.ops_people = cached
    return cached


def is_ops(request: Request, user: Identity) -> bool:
    return user.email in ops_people(request)


def approver_in_scope(request: Request, user: Identity, approver: str | None) -> str | None:
    """The approver filter a caller may use: ops any (or none), others only their own."""
    if is_ops(request, user):
        return approver
    if approver is not None and approver.strip().lower() != user.email:
        raise OutOfScope("you may list only your own pending approvals")
    return user.email


def involved(st: DealStatus) -> set[str]:
    """Everyone the deal's status names as acting on it."""
    people = {*st.owner, st.deal_owner}
    if st.pending_approval:
        people.update(st.pending_approval.approvers)
    people.update(e.by for e in st.evidence)
    people.update(a.approver for a in st.approvals)
    people.update(a.by for a in st.accepted)
    for exc in st.exceptions:
        people.update([exc.raised_by, *exc.owner, exc.resolved_by or ""])
    people.update(h.by or "" for h in st.history if h.accepted)
    return {p.strip().lower() for p in people if p}


def readable_by(request: Request, user: Identity) -> Callable[[DealStatus], bool] | None:
    """What the caller may see on the stall board: everything for ops (None), else the
    handoffs they own or act on."""
    if is_ops(request, user):
        return None
    return lambda st: user.email in involved(st)


def check_can_read(request: Request, user: Identity, st: DealStatus) -> None:
    if not is_ops(request, user) and user.email not in involved(st):
        raise OutOfScope("you may read only the deals you own or act on")


async def out_of_scope_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OutOfScope)
    return JSONResponse({"error": OUT_OF_SCOPE, "reason": exc.reason}, status_code=403)

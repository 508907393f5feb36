"""The approvers' messages: `approve`, `reject`, `delegate_approval`, `recall_approval`.

Each is checked before it acts: only an approver of the tier asked now may decide or
delegate, never whoever requested the terms (segregation of duties), once per tier and
once per signed link; only the deal owner may recall. A decision is recorded with the
terms it was about, and a message that settles the tier returns once the ladder has
moved (`TierWaits.settled`), so its receipt shows the next tier. A handoff still on
child rounds forwards these messages to its `DiscountApproval` child
(`workflows.kit.legacy_rounds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from temporalio import workflow

from workflows import metrics
from workflows.kit.dispatch import Handler, No
from workflows.kit.legacy_rounds import LegacyRounds
from workflows.kit.state import DeskState
from workflows.kit.tiers import TierWaits, decided
from workflows.messages import DecisionIn, DelegateIn, RecallIn
from workflows.names import Msg, Refusal
from workflows.records import ApprovalRecord

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: Used signed links remembered per handoff (a link is bound to one round and tier).
USED_LINKS_KEPT = 200


class Decisions:
    """The approvers' messages of one handoff's ladder (see the module docstring)."""

    def __init__(
        self, h: HandoffWorkflow, state: DeskState, legacy: LegacyRounds, tiers: TierWaits
    ) -> None:
        self._h, self._st, self._legacy, self._tiers = h, state, legacy, tiers

    def handlers(self) -> list[tuple[str, Handler]]:
        return [
            (Msg.APPROVE, Handler(DecisionIn, self._check_decision, self._approve)),
            (Msg.REJECT, Handler(DecisionIn, self._check_decision, self._reject)),
            (Msg.DELEGATE, Handler(DelegateIn, self._check_delegate, self._delegate)),
            (Msg.RECALL, Handler(RecallIn, self._check_recall, self._recall)),
        ]

    def _check_decision(self, msg: DecisionIn) -> No | None:
        p = self._st.pending_approval
        if p is None:
            return No(Refusal.NOT_PENDING, "no discount approval is pending")
        if msg.approver not in p.approvers:
            asked = ", ".join(p.approvers)
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.approver} is not an approver of the {p.tier} tier (asked: {asked})",
            )
        if self._legacy.used:  # a run still on child rounds keeps the checks it had
            return None
        if msg.approver in self.requesters():
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.approver} requested these terms and may not approve them "
                "(segregation of duties)",
            )
        if decided(self._st.approvals, p):
            return No(Refusal.DUPLICATE, f"the {p.tier} tier of round {p.round} is decided")
        if msg.approver in p.approved_by:
            return No(Refusal.DUPLICATE, f"{msg.approver} already approved the {p.tier} tier")
        if msg.link_id is not None and msg.link_id in self._st.used_links:
            return No(Refusal.DUPLICATE, "this approval link has already been used")
        return None

    def requesters(self) -> set[str]:
        """Who asked for the discount: the deal owner and whoever proposed the terms."""
        st = self._st
        return {p for p in (st.owner_email, st.terms_by) if p}

    async def _approve(self, msg: DecisionIn) -> str:
        return await self._decide("approved", msg)

    async def _reject(self, msg: DecisionIn) -> str:
        return await self._decide("rejected", msg)

    async def _decide(self, decision: Literal["approved", "rejected"], msg: DecisionIn) -> str:
        st, p = self._st, self._st.pending_approval
        if self._legacy.child is not None:
            name = Msg.APPROVE if decision == "approved" else Msg.REJECT
            return await self._legacy.forward(name, msg)
        assert p is not None
        record = ApprovalRecord(
            tier=p.tier,
            decision=decision,
            approver=msg.approver,
            reason=msg.reason,
            at=workflow.now(),
            round=p.round,
            discount_percent=p.discount_percent,
            amount=p.amount,
            value=p.value,
        )
        st.approvals.append(record)
        if decision == "approved":
            p.approved_by = [*p.approved_by, msg.approver]
        if msg.link_id is not None:
            st.used_links = [*st.used_links[-(USED_LINKS_KEPT - 1) :], msg.link_id]
        metrics.observe_approval_latency((record.at - p.asked_at).total_seconds(), p.tier, decision)
        self._h.audit.record("approval", f"{p.tier}: {decision} — {msg.reason}", msg.approver)
        if decided(st.approvals, p):  # else the tier waits on more of its group
            await self._tiers.settled(p)
        return f"{p.tier} {decision}"

    def _check_delegate(self, msg: DelegateIn) -> No | None:
        if msg.delegate == msg.approver:
            return No(Refusal.INVALID, "delegate must be someone else")
        return self._check_decision(DecisionIn(approver=msg.approver, reason=msg.reason))

    async def _delegate(self, msg: DelegateIn) -> str:
        if self._legacy.child is not None:
            return await self._legacy.forward(Msg.DELEGATE, msg)
        p = self._st.pending_approval
        assert p is not None
        p.approvers = [msg.delegate if a == msg.approver else a for a in p.approvers]
        self._h.audit.record("approval", f"delegated to {msg.delegate}: {msg.reason}", msg.approver)
        self._tiers.show_approvers()
        self._h.publish()
        await self._tiers.notify([msg.delegate], f"delegated by {msg.approver}")
        return f"delegated to {msg.delegate}"

    def _check_recall(self, msg: RecallIn) -> No | None:
        if self._st.pending_approval is None:
            return No(Refusal.NOT_PENDING, "no discount approval is pending")
        owner = self._h.people("deal_owner")
        if msg.by not in owner:
            return No(
                Refusal.NOT_AUTHORISED,
                f"only the deal owner ({', '.join(owner)}) may recall the approval request",
            )
        return None

    async def _recall(self, msg: RecallIn) -> str:
        if self._legacy.child is not None:
            return await self._legacy.forward(Msg.RECALL, msg)
        asked = self._st.pending_approval
        self._st.recall = msg
        await self._tiers.settled(asked)
        return "approval request recalled"

"""One tier of the approval ladder as a wait: asked, reminded, escalated, decided.

The tier's approvers get a notice when the wait starts (and on every reminder,
escalation and delegation); on the deadline the escalation approvers are added with
their own deadline; when that passes too the ladder is exhausted. The wait ends on a
decision for the tier, a recall, exhaustion, or new terms.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notify import ApprovalNotice, NotifyActivities

from workflows import metrics
from workflows.kit.clock import ClockState
from workflows.kit.conversation import Conversation
from workflows.kit.ladder import ApprovalOutcome, ApprovalStep
from workflows.kit.state import DeskState, Wait
from workflows.kit.terms import TermsPart
from workflows.names import WaitingOn
from workflows.options import NOTIFY
from workflows.records import ApprovalRecord, PendingApproval

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow


def decided(approvals: list[ApprovalRecord], p: PendingApproval) -> bool:
    """Is the tier asked in `p` decided: one rejection, or as many approvals as needed?"""
    mine = [a for a in approvals if a.round == p.round and a.tier == p.tier]
    approvers = {a.approver for a in mine if a.decision == "approved"}
    return any(a.decision == "rejected" for a in mine) or len(approvers) >= p.needed


class TierWaits:
    """Asks the tiers of one handoff's ladder (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow, state: DeskState, terms: TermsPart) -> None:
        self._h, self._st, self._terms = h, state, terms
        self.asking = False  # run() is inside a tier wait: a decision moves it at once
        self.running = False  # run() is inside `ask` (a tier wait, or a question's)
        self.conversation = Conversation(h, state, self)

    async def ask(self, rnd: int, step: ApprovalStep, write: bool) -> ApprovalOutcome | None:
        """Ask one tier until it decides; None when approved (or the terms changed)."""
        h, st, now = self._h, self._st, workflow.now()
        version, tier = st.terms_version, step.tier
        if st.pending_approval is None or st.pending_approval.tier != tier:
            asked = h.acting(list(step.approvers))  # stand-ins for who left or is away
            st.pending_approval = PendingApproval(
                round=rnd,
                tier=tier,
                approvers=asked,
                asked_at=now,
                due_at=None,
                discount_percent=st.terms.discount_percent,
                amount=st.terms.amount,
                margin_percent=self._terms.margin(),
                needed=min(step.needed, max(len(asked), 1)),
                value=step.value,
                rule=self._terms.rule_text(tier),
            )
        pending = st.pending_approval

        def over() -> bool:
            return (
                st.terms_version != version
                or st.recall is not None
                or st.exhausted
                or decided(st.approvals, pending)
            )

        talk = self.conversation

        async def remind(clock: ClockState) -> None:
            h.audit.record("reminder", f"{tier} approval is due soon")
            await self.notify(pending.approvers, "reminder")

        async def escalate(clock: ClockState) -> None:
            levels = [step.escalate_to, *step.ladder] if step.escalate_to else []
            if pending.escalations >= len(levels):
                metrics.count_escalation("approval_exhausted")
                h.audit.record("escalation", f"{tier} approval ladder exhausted")
                st.exhausted = True
                return
            metrics.count_escalation("approval")
            level_people = h.acting(levels[pending.escalations])
            added = [p for p in level_people if p not in pending.approvers]
            pending.approvers, pending.escalated = [*pending.approvers, *added], True
            pending.escalations += 1
            sla = timedelta(seconds=step.escalation_sla_s)
            level = f":{pending.escalations}" if pending.escalations > 1 else ""
            key = f"approval:{tier}:escalated{level}"
            st.clock = ClockState.start(key, sla=sla, now=workflow.now())
            h.audit.record(
                "escalation", f"{tier} approval overdue; escalated to {', '.join(added)}"
            )
            self.show_approvers()
            await self.notify(added or pending.approvers, "escalation")

        self.running = True
        try:
            while True:
                answers = talk.answered(rnd, tier)
                why = "answer received" if answers else "approval requested"

                async def start(why: str = why) -> None:
                    await self.notify(pending.approvers, why)

                self.asking = True
                try:
                    await h.waits.wait_for(
                        Wait(
                            key=f"deal_desk:r{rnd}:{tier}" + (f":a{answers}" if answers else ""),
                            on=WaitingOn.DISCOUNT_APPROVAL,
                            what=f"discount approval ({tier})",
                            owner=pending.approvers,
                            ready=lambda: over() or talk.open() is not None,
                            clock=ClockState.start(
                                f"approval:{tier}",
                                sla=timedelta(seconds=step.sla_s),
                                remind_before=timedelta(seconds=step.remind_before_s),
                                now=workflow.now(),
                            ),
                            write=write,
                            on_start=start,
                            on_remind=remind,
                            on_escalate=escalate,
                        )
                    )
                finally:
                    self.asking = False
                if talk.open() is None or over():
                    break
                await talk.await_answer(rnd, tier, over)
                if over():
                    break
        finally:
            self.running = False
        talk.close("the approval moved on")
        return self._outcome(rnd, step, version)

    def _outcome(self, rnd: int, step: ApprovalStep, version: int) -> ApprovalOutcome | None:
        st = self._st
        if st.terms_version != version:
            return None
        if (recall := st.recall) is not None:
            st.recall = None
            return ApprovalOutcome(
                round=rnd, result="recalled", tier=step.tier, by=recall.by, reason=recall.reason
            )
        if st.exhausted:
            st.exhausted = False
            return ApprovalOutcome(round=rnd, result="exhausted", tier=step.tier)
        rejected = next(
            (
                a
                for a in st.approvals
                if a.round == rnd and a.tier == step.tier and a.decision == "rejected"
            ),
            None,
        )
        if rejected is not None:
            return ApprovalOutcome(
                round=rnd,
                result="rejected",
                tier=step.tier,
                by=rejected.approver,
                reason=rejected.reason,
            )
        return None

    async def notify(self, approvers: list[str], reason: str) -> None:
        """Notify `approvers` that the pending tier waits on them."""
        h, st, p = self._h, self._st, self._st.pending_approval
        assert p is not None
        await workflow.execute_activity_method(
            NotifyActivities.request_approval,
            ApprovalNotice(
                crm=st.crm,
                deal_id=st.deal_id,
                deal_name=st.deal.name if st.deal else "",
                workflow_id=h.workflow_id,
                round=p.round,
                tier=p.tier,
                approvers=approvers,
                discount_percent=p.discount_percent,
                amount=p.amount,
                net_amount=round(p.amount * (1 - p.discount_percent / 100), 2),
                margin_percent=p.margin_percent,
                due_at=h.view.due_at(),
                reason=reason,
            ),
            **NOTIFY,
        )

    async def settled(self, asked: PendingApproval | None) -> None:
        """Return once the ladder has moved past `asked` (at once if no tier wait runs)."""
        if self.asking:
            await workflow.wait_condition(
                lambda: self._st.pending_approval is not asked or bool(self._h.exceptions.holding())
            )

    def show_approvers(self) -> None:
        st, p = self._st, self._st.pending_approval
        if p is not None and st.waiting and st.waiting.on == WaitingOn.DISCOUNT_APPROVAL:
            st.waiting.owner = p.approvers

"""LEGACY `DiscountApproval`: one round of the discount ladder as a child workflow.

Only handoffs opened before engine v2 run it (new rounds run inside the deal's own
workflow); it stays registered, unchanged in behaviour, until none runs (see
`workflows/kit/legacy_rounds.py`). It asks, reminds, escalates, reports to its parent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notify import ApprovalNotice, NotifyActivities

from workflows import metrics, names
from workflows.discount_approval_messages import (
    SUPERSEDE,
    ApprovalProgress,
    ApprovalRequest,
    PauseIn,
)
from workflows.kit.clock import ClockState
from workflows.kit.ladder import ApprovalOutcome, ApprovalStep
from workflows.messages import DecisionIn, DelegateIn, RecallIn
from workflows.names import Msg
from workflows.options import NOTIFY
from workflows.records import ApprovalRecord, HistoryEntry, PendingApproval

EventKind = Literal["approval", "reminder", "escalation", "refused"]


@workflow.defn
class DiscountApproval:
    """One approval round of the tiered ladder (see the module docstring)."""

    def __init__(self) -> None:
        self._req: ApprovalRequest | None = None
        self._step: ApprovalStep | None = None
        self._approvers: list[str] = []
        self._clock: ClockState | None = None
        self._escalated = False
        self._asked_at = workflow.now()
        self._decisions: list[ApprovalRecord] = []
        self._events: list[HistoryEntry] = []
        self._decision: ApprovalRecord | None = None
        self._recall: RecallIn | None = None
        self._superseded = False
        self._changed = False

    @workflow.run
    async def run(self, req: ApprovalRequest) -> ApprovalOutcome:
        self._req = req
        for step in req.steps:
            ended = await self._ask_tier(step)
            if ended is not None:
                return ended
        await self._report(pending=False)
        return ApprovalOutcome(round=req.round, result="approved", decisions=self._decisions)

    async def _ask_tier(self, step: ApprovalStep) -> ApprovalOutcome | None:
        assert self._req is not None  # ask one tier until decided, exhausted or recalled
        self._step, self._decision, self._escalated = step, None, False
        self._approvers = list(step.approvers)
        self._asked_at = workflow.now()
        self._clock = ClockState.start(
            f"approval:{step.tier}",
            sla=timedelta(seconds=step.sla_s),
            remind_before=timedelta(seconds=step.remind_before_s),
            now=self._asked_at,
        )
        await self._ask(self._approvers, "approval requested")
        while True:
            await self._report(pending=True)
            if (ended := self._ended(step)) is not None:
                return ended
            if self._decision is not None:
                return None
            event = self._clock.next_event(workflow.now())
            timeout = (event[1] - workflow.now()) if event else None
            self._changed = False
            try:
                if timeout is None or timeout > timedelta(0):
                    await workflow.wait_condition(
                        lambda: self._changed or self._decision is not None, timeout=timeout
                    )
                    continue
            except TimeoutError:
                pass
            if event is not None and event[0] == "remind":
                self._clock.reminded = True
                self._event("reminder", f"{step.tier} approval is due soon")
                await self._ask(self._approvers, "reminder")
            elif not self._escalated and step.escalate_to:
                await self._escalate(step)
            else:
                metrics.count_escalation("approval_exhausted")
                self._event("escalation", f"{step.tier} approval ladder exhausted")
                return self._outcome("exhausted", step)

    def _ended(self, step: ApprovalStep) -> ApprovalOutcome | None:
        if self._superseded:
            return self._outcome("superseded", step)
        if self._recall is not None:
            return self._outcome("recalled", step, self._recall.by, self._recall.reason)
        if self._decision is not None and self._decision.decision == "rejected":
            d = self._decision
            return self._outcome("rejected", step, d.approver, d.reason)
        return None

    async def _escalate(self, step: ApprovalStep) -> None:
        assert self._clock is not None
        self._escalated = True
        metrics.count_escalation("approval")
        added = [p for p in step.escalate_to if p not in self._approvers]
        self._approvers += added
        self._clock = ClockState.start(
            f"approval:{step.tier}:escalated",
            sla=timedelta(seconds=step.escalation_sla_s),
            now=workflow.now(),
        )
        self._event("escalation", f"{step.tier} approval overdue; escalated to {added}")
        await self._ask(added or self._approvers, "escalation")

    def _outcome(
        self,
        result: Literal["rejected", "recalled", "exhausted", "superseded"],
        step: ApprovalStep,
        by: str | None = None,
        reason: str | None = None,
    ) -> ApprovalOutcome:
        assert self._req is not None
        return ApprovalOutcome(
            round=self._req.round,
            result=result,
            decisions=self._decisions,
            tier=step.tier,
            by=by,
            reason=reason,
        )

    @workflow.signal(name=Msg.APPROVE)
    def approve(self, msg: DecisionIn) -> None:
        self._decide("approved", msg)

    @workflow.signal(name=Msg.REJECT)
    def reject(self, msg: DecisionIn) -> None:
        self._decide("rejected", msg)

    @workflow.signal(name=Msg.DELEGATE)
    async def delegate(self, msg: DelegateIn) -> None:
        if msg.approver not in self._approvers:
            self._event("refused", f"{msg.approver} may not delegate this approval", msg.approver)
            return
        self._approvers = [msg.delegate if a == msg.approver else a for a in self._approvers]
        self._event("approval", f"delegated to {msg.delegate}: {msg.reason}", msg.approver)
        self._changed = True
        await self._ask([msg.delegate], f"delegated by {msg.approver}")

    @workflow.signal(name=Msg.RECALL)
    def recall(self, msg: RecallIn) -> None:
        self._recall = msg
        self._changed = True

    @workflow.signal(name=SUPERSEDE)
    def supersede(self) -> None:
        """New terms replace this round (a signal: a cancel can be lost on 3.11)."""
        self._superseded = True
        self._changed = True

    @workflow.signal(name="pause")
    def pause(self, msg: PauseIn) -> None:
        if self._clock is not None:
            (self._clock.pause if msg.paused else self._clock.resume)(workflow.now())
        self._changed = True

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> ApprovalProgress:
        return self._progress(pending=self._step is not None)

    def _decide(self, decision: Literal["approved", "rejected"], msg: DecisionIn) -> None:
        assert self._req is not None
        if self._step is None or self._decision is not None or msg.approver not in self._approvers:
            metrics.count_refusal(decision)
            self._event(
                "refused", f"{msg.approver} is not asked for this approval now", msg.approver
            )
            self._changed = True
            return
        record = ApprovalRecord(
            tier=self._step.tier,
            decision=decision,
            approver=msg.approver,
            reason=msg.reason,
            at=workflow.now(),
            round=self._req.round,
            discount_percent=self._req.terms.discount_percent,
            amount=self._req.terms.amount,
        )
        self._decision = record
        self._decisions.append(record)
        metrics.observe_approval_latency(
            (record.at - self._asked_at).total_seconds(), self._step.tier, decision
        )
        self._event("approval", f"{self._step.tier}: {decision} — {msg.reason}", msg.approver)

    def _event(self, kind: EventKind, detail: str, by: str | None = None) -> None:
        self._events.append(
            HistoryEntry(
                at=workflow.now(), kind=kind, detail=detail, by=by, accepted=kind != "refused"
            )
        )

    def _progress(self, pending: bool) -> ApprovalProgress:
        assert self._req is not None
        req, step, clock = self._req, self._step, self._clock
        return ApprovalProgress(
            round=req.round,
            pending=PendingApproval(
                round=req.round,
                tier=step.tier,
                approvers=self._approvers,
                asked_at=self._asked_at,
                due_at=clock.due_at(workflow.now()),
                escalated=self._escalated,
                discount_percent=req.terms.discount_percent,
                amount=req.terms.amount,
                margin_percent=req.margin_percent,
            )
            if pending and step is not None and clock is not None
            else None,
            decisions=self._decisions,
            events=self._events,
        )

    async def _report(self, pending: bool) -> None:
        """Tell the parent where the round stands (events are sent once)."""
        assert self._req is not None
        progress = self._progress(pending)
        self._events = []
        await workflow.get_external_workflow_handle(self._req.parent_id).signal(
            names.APPROVAL_PROGRESS, progress
        )

    async def _ask(self, approvers: list[str], reason: str) -> None:
        assert self._req is not None
        assert self._step is not None
        assert self._clock is not None
        req = self._req
        await workflow.execute_activity_method(
            NotifyActivities.request_approval,
            ApprovalNotice(
                crm=req.crm,
                deal_id=req.deal_id,
                deal_name=req.deal_name,
                workflow_id=req.parent_id,
                round=req.round,
                tier=self._step.tier,
                approvers=approvers,
                discount_percent=req.terms.discount_percent,
                amount=req.terms.amount,
                net_amount=req.terms.net,
                margin_percent=req.margin_percent,
                due_at=self._clock.due_at(workflow.now()),
                reason=reason,
            ),
            **NOTIFY,
        )

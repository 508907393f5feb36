"""`ApprovalDesk`: the approval ladder as a building block for any handoff.

A workflow that subclasses it gets the `approve`, `reject`, `delegate_approval`,
`recall_approval` and `update_terms` messages, and `await self.approve_terms()`, which
runs `DiscountApproval` child rounds until the current terms are approved. Status
shows the terms, the approvals and the step asked now (mirrored from the child).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import Field
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from workflows import names
from workflows.discount_approval import (
    SUPERSEDE,
    ApprovalOutcome,
    ApprovalProgress,
    ApprovalRequest,
    DiscountApproval,
    PauseIn,
)
from workflows.kit.clock import SlaState
from workflows.kit.dispatch import Handler
from workflows.kit.handoff import HandoffWorkflow
from workflows.kit.ladder import ApprovalStep, missing_steps
from workflows.kit.state import HandoffState, Wait
from workflows.messages import (
    ApprovalRecord,
    DealStatus,
    DecisionIn,
    DelegateIn,
    PendingApproval,
    RecallIn,
    Terms,
    TermsIn,
)
from workflows.names import Msg, Stage, WaitingOn

APPROVAL_TIMEOUT = "approval_timeout"


class DeskState(HandoffState):
    """The terms and their approvals (part of the workflow state)."""

    terms: Terms = Terms()
    terms_version: int = 0
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    approval_round: int = 0
    pending_approval: PendingApproval | None = None


class ApprovalDesk(HandoffWorkflow):
    """Base class for handoffs whose terms go through the approval ladder."""

    state: DeskState
    _child: workflow.ChildWorkflowHandle[DiscountApproval, ApprovalOutcome] | None = None

    def terms_fixed(self) -> str | None:
        """Why terms can no longer change, or None while they can (override per process)."""
        return None

    async def approve_terms(self) -> list[ApprovalRecord]:
        """Ask the ladder until the current terms are covered; returns the approvals.

        Rejected or recalled: the owner must propose new terms. Exhausted: park as an
        `approval_timeout` exception (or wait for new terms, per policy). New terms in
        the middle of a round supersede it, and only the tiers they affect are asked.
        """
        st = self.state
        while steps := missing_steps(self.policy, st.terms, st.approvals, st.owner_email):
            outcome = await self._approval_round(steps)
            if outcome is None or outcome.result == "approved":
                continue  # superseded by new terms, or approved: re-evaluate the ladder
            if outcome.result == "exhausted" and self.policy.discounts.on_exhausted == "park":
                await self._park_exhausted(outcome)
            else:
                await self._await_new_terms(outcome)
        decided = [a for a in st.approvals if a.decision == "approved"]
        if not decided:
            self.record("approval", f"{st.terms.discount_percent:g}% is within the automatic tier")
        return decided

    def approvals_note(self, decided: list[ApprovalRecord]) -> str:
        margin = self.state.terms.margin_percent(self.policy.discounts.default_cost_ratio)
        return f"Deal desk: {self._terms_text()}, real margin {margin:g}%.\n" + "\n".join(
            f"- {a.tier}: {a.decision} by {a.approver}: {a.reason}" for a in decided
        )

    def _terms_text(self) -> str:
        t = self.state.terms
        return f"{t.amount:,.2f} {self.policy.currency} at {t.discount_percent:g}% discount"

    def _needs_approval(self) -> bool:
        st = self.state
        return bool(missing_steps(self.policy, st.terms, st.approvals, st.owner_email))

    # -- rounds ----------------------------------------------------------------------
    async def _approval_round(self, steps: list[ApprovalStep]) -> ApprovalOutcome | None:
        """Run one `DiscountApproval` child; None if new terms superseded it."""
        st = self.state
        st.approval_round += 1
        rnd, version = st.approval_round, st.terms_version
        margin = st.terms.margin_percent(self.policy.discounts.default_cost_ratio)
        await self.wait_for(
            Wait(
                key=f"deal_desk:r{rnd}",
                on=WaitingOn.DISCOUNT_APPROVAL,
                what=f"discount approval ({', '.join(s.tier for s in steps)})",
                owner=steps[0].approvers,
                ready=lambda: True,  # writes the transition, then the child takes over
            )
        )
        self.record("approval", f"round {rnd}: asking {[s.tier for s in steps]}")
        self._child = await workflow.start_child_workflow(
            DiscountApproval.run,
            ApprovalRequest(
                parent_id=self.workflow_id,
                crm=st.crm,
                deal_id=st.deal_id,
                deal_name=st.deal.name if st.deal else "",
                round=rnd,
                terms=st.terms,
                margin_percent=margin,
                steps=steps,
            ),
            id=names.discount_approval_id(self.workflow_id, rnd),
            task_queue=workflow.info().task_queue,
        )
        result = asyncio.ensure_future(self._child)
        paused = False
        while not result.done() and st.terms_version == version:
            if paused != bool(st.open_exceptions()):
                paused = not paused
                await self._child.signal("pause", PauseIn(paused=paused))
            await workflow.wait_condition(
                functools.partial(self._round_moved, result, version, paused)
            )
        child, self._child = self._child, None
        st.pending_approval = None
        if not result.done():
            self.record("approval", f"round {rnd} superseded by new terms")
            try:
                await child.signal(SUPERSEDE)
            except Exception:  # the round ended meanwhile; its outcome no longer matters
                workflow.logger.info("round %s ended before it was superseded", rnd)
            await workflow.wait([result])
            if result.exception() is None:
                self._merge_decisions(rnd, result.result().decisions)
            return None
        try:
            outcome = result.result()
        except ChildWorkflowError as err:
            self.record("approval", f"round {rnd} failed: {err.cause or err}")
            return ApprovalOutcome(round=rnd, result="exhausted", tier=steps[0].tier)
        self._merge_decisions(rnd, outcome.decisions)
        self.record("approval", f"round {rnd}: {outcome.result}", by=outcome.by)
        return outcome

    def _round_moved(self, result: asyncio.Future[Any], version: int, paused: bool) -> bool:
        """The round ended, the terms changed, or an exception opened or closed."""
        st = self.state
        return result.done() or st.terms_version != version or paused != bool(st.open_exceptions())

    async def _park_exhausted(self, outcome: ApprovalOutcome) -> None:
        """Nobody decided in time: park as an exception; resolving it asks again."""
        await self.raise_exception(
            APPROVAL_TIMEOUT, "handoff", f"no decision on the {outcome.tier} tier in time"
        )
        await self.wait_for(
            Wait(
                key=f"deal_desk:r{outcome.round}:parked",
                on=WaitingOn.EXCEPTION,
                what=f"{APPROVAL_TIMEOUT} to be resolved",
                owner=self.people(self.policy.exceptions[APPROVAL_TIMEOUT].owner),
                ready=lambda: (
                    not any(e.kind == APPROVAL_TIMEOUT for e in self.state.open_exceptions())
                ),
            )
        )

    async def _await_new_terms(self, outcome: ApprovalOutcome) -> None:
        """Rejected or recalled: the owner must propose new terms."""
        version, rule = self.state.terms_version, self.policy.stage(Stage.DEAL_DESK)
        why = (
            f"{outcome.result} by {outcome.by}: {outcome.reason}" if outcome.by else outcome.result
        )
        await self.wait_for(
            Wait(
                key=f"deal_desk:r{outcome.round}:terms",
                on=WaitingOn.TERMS_UPDATE,
                what=f"new terms ({why})",
                owner=self.people(rule.owner),
                ready=lambda: self.state.terms_version != version,
                clock=rule,
                task=f"Discount {why}. Propose new terms",
            )
        )

    def _merge_decisions(self, rnd: int, decisions: list[ApprovalRecord]) -> None:
        st = self.state
        st.approvals = [a for a in st.approvals if a.round != rnd] + decisions

    @workflow.signal(name=names.APPROVAL_PROGRESS)
    def approval_progress(self, progress: ApprovalProgress) -> None:
        """From the child: the step asked now, decisions so far, reminders, escalations."""
        st = self.state
        if progress.round != st.approval_round or self._child is None:
            return  # a round that already ended (its outcome is merged from its result)
        st.pending_approval = progress.pending
        self._merge_decisions(progress.round, progress.decisions)
        for event in progress.events:
            self.record(event.kind, event.detail, event.by, event.accepted)
        if progress.pending and st.waiting and st.waiting.on == WaitingOn.DISCOUNT_APPROVAL:
            st.waiting.owner = progress.pending.approvers
            st.waiting.what = f"discount approval ({progress.pending.tier})"
        self.publish()

    # -- messages ---------------------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {
            **super().handlers(),
            Msg.APPROVE: Handler(DecisionIn, self._check_decision, self._forward(Msg.APPROVE)),
            Msg.REJECT: Handler(DecisionIn, self._check_decision, self._forward(Msg.REJECT)),
            Msg.DELEGATE: Handler(DelegateIn, self._check_delegate, self._forward(Msg.DELEGATE)),
            Msg.RECALL: Handler(RecallIn, self._check_recall, self._forward(Msg.RECALL)),
            Msg.UPDATE_TERMS: Handler(TermsIn, self._check_terms, self._apply_terms),
        }

    def _check_decision(self, msg: DecisionIn) -> str | None:
        pending = self.state.pending_approval
        if pending is None or self._child is None:
            return "no discount approval is pending"
        if msg.approver not in pending.approvers:
            return (
                f"{msg.approver} is not an approver of the {pending.tier} tier "
                f"(asked: {', '.join(pending.approvers)})"
            )
        return None

    def _check_delegate(self, msg: DelegateIn) -> str | None:
        if msg.delegate == msg.approver:
            return "delegate must be someone else"
        return self._check_decision(DecisionIn(approver=msg.approver, reason=msg.reason))

    def _check_recall(self, msg: RecallIn) -> str | None:
        if self.state.pending_approval is None or self._child is None:
            return "no discount approval is pending"
        owner = self.people("deal_owner")
        if msg.by not in owner:
            return f"only the deal owner ({', '.join(owner)}) may recall the approval request"
        return None

    def _forward(self, name: Msg) -> Callable[[Any], Awaitable[str]]:
        """Pass a validated approval message on to the running approval round."""

        async def forward(msg: DecisionIn | DelegateIn | RecallIn) -> str:
            child, rnd = self._child, self.state.approval_round
            if child is None:
                self.refuse(name, f"approval round {rnd} has already ended", None)
                return f"approval round {rnd} has already ended"
            try:
                await child.signal(name, msg)
            except Exception as exc:  # the round ended meanwhile: a refusal, not a crash
                self.refuse(name, f"approval round {rnd} has ended ({exc})", None)
                return f"approval round {rnd} has already ended"
            return f"{name} sent to approval round {rnd}"

        return forward

    def _check_terms(self, msg: TermsIn) -> str | None:
        st = self.state
        if (fixed := self.terms_fixed()) is not None:
            return fixed
        allowed = {*self.people("deal_owner"), *self.people("sales_manager")}
        if msg.by not in allowed:
            return f"{msg.by} may not change terms; allowed: {sorted(allowed)}"
        if msg.discount_percent is None and msg.amount is None:
            return "give discount_percent and/or amount"
        new = self._new_terms(msg)
        if new == st.terms:
            return "terms are unchanged"
        return None

    def _new_terms(self, msg: TermsIn) -> Terms:
        changes = {"discount_percent": msg.discount_percent, "amount": msg.amount}
        return self.state.terms.model_copy(
            update={k: v for k, v in changes.items() if v is not None}
        )

    async def _apply_terms(self, msg: TermsIn) -> str:
        st = self.state
        st.terms = self._new_terms(msg)
        st.terms_version += 1
        self.record("terms", self._terms_text(), by=msg.by)
        steps = missing_steps(self.policy, st.terms, st.approvals, st.owner_email)
        return f"terms now {self._terms_text()}; to approve: {[s.tier for s in steps] or 'none'}"

    # -- status -----------------------------------------------------------------------------
    def due_at(self) -> datetime | None:
        pending = self.state.pending_approval
        return pending.due_at if pending and self._child else super().due_at()

    def sla_state(self) -> SlaState:
        pending = self.state.pending_approval
        if pending is None or self._child is None:
            return super().sla_state()
        if pending.escalated:
            return "escalated"
        if pending.due_at and workflow.now() >= pending.due_at:
            return "breached"
        return "ok"

    def describe(self) -> DealStatus:
        st = self.state
        return (
            super()
            .describe()
            .model_copy(
                update={
                    "terms": st.terms,
                    "approvals": st.approvals,
                    "pending_approval": st.pending_approval,
                    "approval_round": st.approval_round,
                }
            )
        )

"""`ApprovalDesk`: the discount approval ladder, inside the deal's own workflow.

`await desk.approve_terms()` asks every tier the current terms still need, lowest
first, one wait per tier: the tier's approvers get a notice (with signed links when
configured), a reminder before the deadline, and on the deadline the escalation
approvers are added with their own deadline; when that passes too the ladder is
exhausted and the handoff parks or waits for new terms, per policy. A rejection or a
recall (by the deal owner) waits for new terms; new terms end the round and only the
tiers they affect are asked again (`workflows.kit.ladder`). Open exceptions pause the
tier's clock like any other.

An `approve`, `reject`, `delegate_approval` or `recall_approval` update returns once
the ladder has moved, so its receipt (and `status`) shows the next tier asked, or that
the desk is passed. Those messages live in `workflows.kit.decisions`, terms messages
in `workflows.kit.terms`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import names
from workflows.kit.clock import SlaState
from workflows.kit.decisions import Decisions
from workflows.kit.dispatch import Handler
from workflows.kit.ladder import ApprovalOutcome, ApprovalStep, missing_steps
from workflows.kit.legacy_rounds import LegacyRounds
from workflows.kit.patches import patched
from workflows.kit.quote_lines import QuoteReader
from workflows.kit.state import DeskState, Wait
from workflows.kit.terms import TermsPart
from workflows.kit.tiers import TierWaits
from workflows.messages import DealStatus
from workflows.names import WaitingOn
from workflows.quote import lines_text
from workflows.records import ApprovalRecord, PendingApproval

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

APPROVAL_TIMEOUT = "approval_timeout"
#: `workflow.patched` id: rounds run inside the workflow, not as child workflows.
APPROVALS_INLINE = "approvals-inline"


class ApprovalDesk:
    """The approval ladder of one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow, state: DeskState, terms: TermsPart) -> None:
        self._h, self._st, self.terms = h, state, terms
        self.legacy = LegacyRounds(h, state)
        self.tiers = TierWaits(h, state, terms)
        self.quote = QuoteReader(h, state)
        self.decisions = Decisions(h, state, self.legacy, self.tiers)
        workflow.set_signal_handler(names.APPROVAL_PROGRESS, self.legacy.progress)

    def handlers(self) -> list[tuple[str, Handler]]:
        return [
            *self.decisions.handlers(),
            *self.terms.handlers(),
            *self.tiers.conversation.handlers(),
        ]

    # -- the ladder --------------------------------------------------------------------
    async def approve_terms(self) -> list[ApprovalRecord]:
        """Ask the ladder until the current terms are covered; returns the approvals."""
        st = self._st
        while steps := self.missing():
            if patched(self._h, APPROVALS_INLINE):
                outcome = await self._round(steps)
            else:  # a handoff opened before the upgrade
                outcome = await self.legacy.round(steps, self.terms.margin())
            if outcome is None or outcome.result == "approved":
                continue  # superseded by new terms, or approved: re-evaluate the ladder
            if outcome.result == "exhausted" and self._h.policy.discounts.on_exhausted == "park":
                await self._park_exhausted(outcome)
            else:
                await self.terms.await_new_terms(outcome)
        decided = [a for a in st.approvals if a.decision == "approved"]
        if not decided:
            pct = st.terms.discount_percent
            self._h.audit.record("approval", f"{pct:g}% is within the automatic tier")
        return decided

    def missing(self) -> list[ApprovalStep]:
        st = self._st
        manager = self._h.managers.crm_manager()
        return missing_steps(
            self._h.policy, st.terms, st.approvals, st.owner_email, st.quote, manager
        )

    async def _round(self, steps: list[ApprovalStep]) -> ApprovalOutcome | None:
        """One round over `steps`, tier by tier; None if new terms superseded it."""
        h, st = self._h, self._st
        pending = st.pending_approval
        if pending is None or pending.round != st.approval_round:  # else resume after CAN
            st.approval_round += 1
            st.recall, st.exhausted = None, False
            h.audit.record(
                "approval", f"round {st.approval_round}: asking {[s.tier for s in steps]}"
            )
        rnd, version = st.approval_round, st.terms_version
        outcome: ApprovalOutcome | None = None
        for i, step in enumerate(steps):
            outcome = await self.tiers.ask(rnd, step, write=i == 0)
            if outcome is not None or st.terms_version != version:
                break
        st.pending_approval = None
        if st.terms_version != version:
            h.audit.record("approval", f"round {rnd} superseded by new terms")
            return None
        outcome = outcome or ApprovalOutcome(round=rnd, result="approved")
        h.audit.record("approval", f"round {rnd}: {outcome.result}", by=outcome.by)
        return outcome

    async def _park_exhausted(self, outcome: ApprovalOutcome) -> None:
        """Nobody decided in time: park as an exception; resolving it asks again."""
        h = self._h
        await h.exceptions.raise_(
            APPROVAL_TIMEOUT, "handoff", f"no decision on the {outcome.tier} tier in time"
        )
        await h.waits.wait_for(
            Wait(
                key=f"deal_desk:r{outcome.round}:parked",
                on=WaitingOn.EXCEPTION,
                what=f"{APPROVAL_TIMEOUT} to be resolved",
                owner=h.people(h.policy.exceptions[APPROVAL_TIMEOUT].owner),
                ready=lambda: not h.exceptions.is_open(APPROVAL_TIMEOUT),
            )
        )

    # -- status ------------------------------------------------------------------------
    def pending(self) -> PendingApproval | None:
        """The tier asked now, with its current due time."""
        p = self._st.pending_approval
        if p is None or self.legacy.child is not None:
            return p
        return p.model_copy(update={"due_at": self._h.view.due_at()})

    def clock_shown(self) -> tuple[datetime | None, SlaState] | None:
        """Due time and SLA state when the ladder shows its own: a child round's, or an
        escalated tier (its clock runs again, for the escalation approvers)."""
        if (legacy := self.legacy.clock()) is not None:
            return legacy
        st, p = self._st, self._st.pending_approval
        if p is None or not p.escalated or st.clock is None or st.clock.paused:
            return None
        return st.clock.due_at(workflow.now()), "escalated"

    def describe(self, status: DealStatus) -> DealStatus:
        st = self._st
        return status.model_copy(
            update={
                "terms": st.terms,
                "approvals": st.approvals,
                "pending_approval": self.pending(),
                "approval_round": st.approval_round,
                "margin_percent": self.terms.margin(),
                "margin_source": st.terms.margin_source(),
                "conversation": st.conversation,
            }
        )

    def approvals_note(self, decided: list[ApprovalRecord]) -> str:
        st = self._st
        if not st.quote:  # a handoff opened before quote lines keeps its note
            return (
                f"Deal desk: {self.terms.text()}, real margin {self.terms.margin():g}%.\n"
                + "\n".join(
                    f"- {a.tier}: {a.decision} by {a.approver}: “{a.reason}”" for a in decided
                )
            )
        lines = lines_text(
            st.terms, self._h.policy.currency, self._h.policy.discounts.default_cost_ratio
        )
        talk = [
            f"- Q ({q.tier}) {q.approver}: “{q.question}” — A {q.answered_by or '-'}: "
            f"“{q.answer or q.closed or ''}”"
            for q in st.conversation
        ]
        return "\n".join(
            [
                f"Deal desk: {self.terms.text()}, {lines[-1]}.",
                *(f"- line {text}" for text in lines[:-1]),
                *(f"- {a.tier}: {a.decision} by {a.approver}: “{a.reason}”" for a in decided),
                *talk,
            ]
        )

    def needs_approval(self) -> bool:
        return bool(self.missing())

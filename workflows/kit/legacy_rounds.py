"""Approval rounds as `DiscountApproval` child workflows: the path of handoffs opened
before the ladder moved inside the deal's workflow (see docs/adding-a-handoff.md,
"Changing a running workflow").

`workflow.patched(APPROVALS_INLINE)` sends every new round down the inline path; a run
that replays an older history without the marker keeps using children until it ends.
This module keeps that path command for command as it was, so those histories replay.
Delete it, with `workflows/discount_approval.py` and `discount_approval_messages.py`,
once `temporal workflow list --query "WorkflowType='DiscountApproval' AND
ExecutionStatus='Running'"` is empty everywhere.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from workflows import names
from workflows.discount_approval import DiscountApproval
from workflows.discount_approval_messages import (
    SUPERSEDE,
    ApprovalProgress,
    ApprovalRequest,
    PauseIn,
)
from workflows.kit.clock import SlaState
from workflows.kit.dispatch import No
from workflows.kit.ladder import ApprovalOutcome, ApprovalStep
from workflows.kit.state import DeskState, Wait
from workflows.names import Msg, Refusal, WaitingOn
from workflows.records import ApprovalRecord

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow


class LegacyRounds:
    """The child-workflow rounds of a handoff opened before the upgrade."""

    def __init__(self, h: HandoffWorkflow, state: DeskState) -> None:
        self._h, self._st = h, state
        self.child: workflow.ChildWorkflowHandle[DiscountApproval, ApprovalOutcome] | None = None
        self.used = False

    async def round(self, steps: list[ApprovalStep], margin: float) -> ApprovalOutcome | None:
        """Run one `DiscountApproval` child; None if new terms superseded it."""
        h, st = self._h, self._st
        self.used = True
        st.approval_round += 1
        rnd, version = st.approval_round, st.terms_version
        await h.waits.wait_for(
            Wait(
                key=f"deal_desk:r{rnd}",
                on=WaitingOn.DISCOUNT_APPROVAL,
                what=f"discount approval ({', '.join(s.tier for s in steps)})",
                owner=steps[0].approvers,
                ready=lambda: True,  # writes the transition, then the child takes over
            )
        )
        h.audit.record("approval", f"round {rnd}: asking {[s.tier for s in steps]}")
        self.child = await workflow.start_child_workflow(
            DiscountApproval.run,
            ApprovalRequest(
                parent_id=h.workflow_id,
                crm=st.crm,
                deal_id=st.deal_id,
                deal_name=st.deal.name if st.deal else "",
                round=rnd,
                terms=st.terms,
                margin_percent=margin,
                steps=steps,
            ),
            id=names.discount_approval_id(h.workflow_id, rnd),
            task_queue=workflow.info().task_queue,
        )
        result = asyncio.ensure_future(self.child)
        paused = False
        while not result.done() and st.terms_version == version:
            if paused != bool(st.open_exceptions()):
                paused = not paused
                await self.child.signal("pause", PauseIn(paused=paused))
            await workflow.wait_condition(functools.partial(self._moved, result, version, paused))
        child, self.child = self.child, None
        st.pending_approval = None
        if not result.done():
            h.audit.record("approval", f"round {rnd} superseded by new terms")
            try:
                await child.signal(SUPERSEDE)
            except Exception:  # the round ended meanwhile; its outcome no longer matters
                workflow.logger.info("round %s ended before it was superseded", rnd)
            await workflow.wait([result])
            if result.exception() is None:
                self._merge(rnd, result.result().decisions)
            return None
        try:
            outcome = result.result()
        except ChildWorkflowError as err:
            h.audit.record("approval", f"round {rnd} failed: {err.cause or err}")
            return ApprovalOutcome(round=rnd, result="exhausted", tier=steps[0].tier)
        self._merge(rnd, outcome.decisions)
        h.audit.record("approval", f"round {rnd}: {outcome.result}", by=outcome.by)
        return outcome

    def _moved(self, result: asyncio.Future[Any], version: int, paused: bool) -> bool:
        """The round ended, the terms changed, or an exception opened or closed."""
        st = self._st
        return result.done() or st.terms_version != version or paused != bool(st.open_exceptions())

    def _merge(self, rnd: int, decisions: list[ApprovalRecord]) -> None:
        st = self._st
        st.approvals = [a for a in st.approvals if a.round != rnd] + decisions

    def progress(self, progress: ApprovalProgress) -> None:
        """The `approval_progress` signal: from a running child round, and nobody else."""
        h, st = self._h, self._st
        if progress.round != st.approval_round or self.child is None:
            if not self.used:  # no child ever ran here: a forged signal
                why = "no approval round runs as a child workflow here"
                h.audit.refuse(names.APPROVAL_PROGRESS, No(Refusal.NOT_PENDING, why), None)
            return  # a round that already ended (its outcome is merged from its result)
        st.pending_approval = progress.pending
        self._merge(progress.round, progress.decisions)
        for event in progress.events:
            h.audit.record(event.kind, event.detail, event.by, event.accepted)
        if progress.pending and st.waiting and st.waiting.on == WaitingOn.DISCOUNT_APPROVAL:
            st.waiting.owner = progress.pending.approvers
            st.waiting.what = f"discount approval ({progress.pending.tier})"
        h.publish()

    async def forward(self, name: Msg, msg: Any) -> str:
        """Pass a validated approval message on to the running child round."""
        child, rnd = self.child, self._st.approval_round
        if child is None:
            self._h.audit.refuse(
                name, No(Refusal.NOT_PENDING, f"approval round {rnd} has already ended"), None
            )
            return f"approval round {rnd} has already ended"
        try:
            await child.signal(name, msg)
        except Exception as exc:  # the round ended meanwhile: a refusal, not a crash
            why = No(Refusal.NOT_PENDING, f"approval round {rnd} has ended ({exc})")
            self._h.audit.refuse(name, why, None)
            return f"approval round {rnd} has already ended"
        return f"{name} sent to approval round {rnd}"

    def clock(self) -> tuple[datetime | None, SlaState] | None:
        """Due time and SLA state of a running child round (mirrored from the child)."""
        pending = self._st.pending_approval
        if pending is None or self.child is None:
            return None
        if pending.escalated:
            return pending.due_at, "escalated"
        if pending.due_at and workflow.now() >= pending.due_at:
            return pending.due_at, "breached"
        return pending.due_at, "ok"

"""Renewal pricing on the time-skipping server: a price increase goes through the ladder.

A renewal carries the approvals the deal already has (from its lead-to-cash). A tier's
approval covers a discount up to its ceiling and an amount up to the one approved, so
renewing at the same price needs nobody, and a price increase asks the tier again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from support.handoffs import (
    MANAGER,
    OWNER,
    eventually,
    give_evidence,
    handoff_worker,
    make_deal,
    signal,
    skip,
    track,
    until,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows import names
from workflows.messages import DealStatus
from workflows.names import Msg, WaitingOn
from workflows.policy import default_policy
from workflows.records import ApprovalRecord, Terms
from workflows.renewal import RenewalExpansion, RenewalInput, RenewalStage

ACCOUNT_MANAGER = "amy.am@example.com"
#: What the deal closed at in its lead-to-cash: 100k at 20%, approved by the manager.
CLOSED_TERMS = Terms(amount=100_000.0, discount_percent=20.0)
MANAGER_APPROVAL = ApprovalRecord(
    tier="sales_manager",
    decision="approved",
    approver=MANAGER,
    reason="Strategic logo",
    at=datetime(2026, 1, 5, tzinfo=UTC),
    round=1,
    discount_percent=20.0,
    amount=100_000.0,
)


@asynccontextmanager
async def renewal_in_signature(
    env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[tuple[WorkflowHandle[Any, DealStatus], MemoryConnector]]:
    """A renewal carrying the closed terms and approval, past usage, awaiting signature."""
    now = await env.get_current_time()
    deal = make_deal(f"R-{uuid.uuid4().hex[:8]}", discount=20)
    deal.fields["contract_end_date"] = (now + timedelta(days=100)).date().isoformat()
    crm, policy = MemoryConnector([deal]), default_policy()
    async with handoff_worker(env.client, task_queue, crm):
        handle = await env.client.start_workflow(
            RenewalExpansion.run,
            RenewalInput(
                crm="memory",
                deal_id=deal.id,
                policy=policy,
                policy_version=policy.version,
                from_workflow_id=names.lead_to_cash_id("memory", deal.id),
                terms=CLOSED_TERMS,
                approvals=[MANAGER_APPROVAL],
            ),
            id=names.renewal_id("memory", deal.id),
            task_queue=task_queue,
        )
        track(task_queue, handle.id)
        await until(handle, lambda s: s.waiting_on == WaitingOn.TIME)
        await skip(env, handle, timedelta(days=10, hours=1))
        await until(handle, lambda s: s.stage == RenewalStage.USAGE)
        await give_evidence(handle, "usage_confirmed", by=ACCOUNT_MANAGER)
        await until(handle, lambda s: s.stage == RenewalStage.SIGNATURE)
        yield handle, crm


async def test_renewing_at_the_approved_price_needs_no_new_approval(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Same amount, same discount: the carried approval covers it, no round is asked."""
    async with renewal_in_signature(time_env, task_queue) as (handle, _):
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    assert st.approval_round == 0
    assert [a.approver for a in st.approvals] == [MANAGER]


async def test_price_increase_goes_through_the_ladder_with_approval(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Raising the price before signature asks the manager again; approved, it is signed."""
    async with renewal_in_signature(time_env, task_queue) as (handle, crm):
        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, amount=110_000)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.stage == RenewalStage.PRICING and st.owner == [MANAGER]
        assert st.pending_approval is not None and st.pending_approval.amount == 110_000
        await signal(handle, Msg.APPROVE, approver=MANAGER, reason="CPI uplift, usage is up")
        await until(handle, lambda s: s.stage == RenewalStage.SIGNATURE and s.approval_round == 1)
        await give_evidence(handle, "renewal_signed", by=OWNER)
        final = await until(handle, lambda s: s.done)
        deal_id = final.deal_id
    latest = [a for a in final.approvals if a.round == 1]
    assert [(a.approver, a.amount) for a in latest] == [(MANAGER, 110_000)]
    assert final.terms.amount == 110_000
    notes = [str(r.data["body"]) for r in crm.records(deal_id, "note")]
    assert any("CPI uplift, usage is up" in n for n in notes)  # the decision is written back
    assert crm.get_deal(deal_id).fields["handoff_status"] == "complete"


async def test_rejected_price_increase_waits_for_new_terms_from_the_owner(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A rejected increase is not signed: the owner gets a task to propose new terms."""
    async with renewal_in_signature(time_env, task_queue) as (handle, crm):
        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, amount=130_000)
        await until(handle, lambda s: s.pending_approval is not None)
        await signal(handle, Msg.REJECT, approver=MANAGER, reason="Too steep for this account")
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
        assert st.owner == [OWNER] and not st.done

        def owner_tasks() -> list[str]:
            return [
                str(r.data["subject"])
                for r in crm.records(st.deal_id, "task")
                if r.data["owner_email"] == OWNER
            ]

        # the task is written by an activity right after the wait starts
        await eventually(
            lambda: any("Too steep for this account" in t for t in owner_tasks()),
            "the owner's task to propose new terms",
        )

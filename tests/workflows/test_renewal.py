"""Renewal and expansion on the time-skipping server: every path of the second handoff."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    give_evidence,
    handoff_worker,
    make_deal,
    signal,
    skip,
    start,
    track,
    until,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from workflows import names
from workflows.messages import DealStatus
from workflows.names import Msg, Stage, WaitingOn
from workflows.policy import default_policy
from workflows.renewal import RenewalExpansion, RenewalInput

AM = "amy.am@example.com"


def contract_ending(now: datetime, days: int, deal_id: str | None = None) -> Any:
    deal = make_deal(deal_id or f"R-{uuid.uuid4().hex[:8]}", discount=0)
    deal.fields["contract_end_date"] = (now + timedelta(days=days)).date().isoformat()
    return deal


@asynccontextmanager
async def renewal(
    env: WorkflowEnvironment, task_queue: str, days_to_end: int = 100
) -> AsyncIterator[tuple[WorkflowHandle[Any, DealStatus], MemoryConnector]]:
    """A renewal whose contract ends in `days_to_end` days, its window (90 days) open."""
    now = await env.get_current_time()
    deal = contract_ending(now, days_to_end)
    crm = MemoryConnector([deal])
    policy = default_policy()
    async with handoff_worker(env.client, task_queue, crm):
        handle = await env.client.start_workflow(
            RenewalExpansion.run,
            RenewalInput(
                crm="memory", deal_id=deal.id, policy=policy, policy_version=policy.version
            ),
            id=names.renewal_id("memory", deal.id),
            task_queue=task_queue,
        )
        track(task_queue, handle.id)
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.TIME)
        assert "renewal window" in st.waiting_for
        await skip(env, handle, timedelta(days=days_to_end - 90, hours=1))
        await until(handle, lambda s: s.stage == "usage" and s.waiting_on == WaitingOn.EVIDENCE)
        yield handle, crm


def tasks(crm: MemoryConnector, deal_id: str) -> list[dict[str, Any]]:
    return [r.data for r in crm.records(deal_id, "task")]


async def test_window_opens_usage_is_confirmed_and_the_renewal_is_signed(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """90 days before the end the account manager is told; usage, then signature, done."""
    async with renewal(time_env, task_queue) as (handle, crm):
        deal_id = handle.id.removeprefix("renewal-memory-")
        assert any(
            t["owner_email"] == AM and "Renewal window open" in t["subject"]
            for t in tasks(crm, deal_id)
        )  # the patched heads-up (new runs)
        await give_evidence(handle, "usage_confirmed", by=AM)
        await until(handle, lambda s: s.stage == "signature")
        await give_evidence(handle, "renewal_signed", by=OWNER)
        final = await handle.result()
    assert crm.get_deal(deal_id).fields["handoff_status"] == "complete"
    notes = [r.data["body"] for r in crm.records(deal_id, "note")]
    assert any("Usage confirmed" in n for n in notes) and any("Renewed" in n for n in notes)
    assert final.approvals == []


async def test_expansion_goes_back_to_sales_with_its_context(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Usage showing room to grow creates a task and a note for the deal owner."""
    async with renewal(time_env, task_queue) as (handle, crm):
        deal_id = handle.id.removeprefix("renewal-memory-")
        await signal(
            handle,
            Msg.ADD_EVIDENCE,
            kind="expansion_identified",
            by=AM,
            ref="usage-report-q3",
            note="40 more seats in use than licensed",
        )
        await give_evidence(handle, "usage_confirmed", by=AM)
        await until(handle, lambda s: s.stage == "signature")
    owner_tasks = [t["subject"] for t in tasks(crm, deal_id) if t["owner_email"] == OWNER]
    assert any("Expansion opportunity" in t for t in owner_tasks)
    notes = [r.data["body"] for r in crm.records(deal_id, "note")]
    assert any("Expansion opportunity" in n and "usage-report-q3" in n for n in notes)


async def test_renewal_discount_goes_through_the_same_ladder(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A 30% renewal discount needs the sales manager and the VP, like new business."""
    async with renewal(time_env, task_queue) as (handle, _):
        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=30)
        await give_evidence(handle, "usage_confirmed", by=AM)
        await until(handle, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
        await signal(handle, Msg.APPROVE, approver=MANAGER, reason="Keep the logo")
        await until(handle, lambda s: s.pending_approval is not None and s.owner == [VP])
        await signal(handle, Msg.APPROVE, approver=VP, reason="Three-year term")
        st = await until(handle, lambda s: s.stage == "signature")
    assert [a.tier for a in st.approvals] == ["sales_manager", "vp"]


async def test_missed_renewal_escalates_at_contract_end(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No signature by the contract end: the VP gets an escalation task."""
    async with renewal(time_env, task_queue, days_to_end=95) as (handle, crm):
        deal_id = handle.id.removeprefix("renewal-memory-")
        await give_evidence(handle, "usage_confirmed", by=AM)
        await until(handle, lambda s: s.stage == "signature")
        await skip(time_env, handle, timedelta(days=91))
        st = await until(handle, lambda s: s.sla_state == "escalated")
    assert any(
        t["owner_email"] == VP and t["subject"].startswith("Escalation")
        for t in tasks(crm, deal_id)
    )
    assert st.stage == "signature"


async def test_renewal_continues_a_closed_lead_to_cash(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """After cash, the renewal starts with the lead-to-cash's terms and approvals."""
    now = await time_env.get_current_time()
    deal = contract_ending(now, 200)
    deal.discount_percent = 20
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        l2c = await start(time_env.client, task_queue, deal.id)
        await give_evidence(l2c, *QUALIFY_EVIDENCE)
        await until(l2c, lambda s: s.pending_approval is not None)
        await signal(l2c, Msg.APPROVE, approver=MANAGER, reason="ok")
        await until(l2c, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(l2c, "contract_signed")
        await until(l2c, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        await signal(l2c, Msg.ACCEPT_HANDOFF, team="operations", by="olga.ops@example.com")
        await give_evidence(l2c, "delivery_confirmed", by="olga.ops@example.com")
        await until(l2c, lambda s: s.stage == Stage.CASH)
        await give_evidence(l2c, "payment_received", by="bill.billing@example.com")
        await l2c.result()
        renewal = HandoffRef.of("renewal", "memory", deal.id)
        handle, started = await handoffs.start(
            time_env.client, renewal, policy=default_policy(), task_queue=task_queue
        )
        assert started
        track(task_queue, handle.id)
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.TIME)
        again = await handoffs.start(
            time_env.client, renewal, policy=default_policy(), task_queue=task_queue
        )
    assert again[1] is False
    assert st.terms.discount_percent == 20
    assert [a.approver for a in st.approvals] == [MANAGER]
    assert any("continues lead-to-cash-memory-" in h.detail for h in st.history)

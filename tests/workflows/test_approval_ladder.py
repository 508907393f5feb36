"""The discount ladder: reminders, escalation, the exhausted outcome, delegation, recall."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    SALES_OPS,
    VP,
    RecordingNotifier,
    deal_id_of,
    eventually,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    signal,
    skip,
    start,
    status,
    until,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.names import Msg, Stage, WaitingOn
from workflows.policy import Policy, default_policy

DELEGATE = "dana.delegate@example.com"


@asynccontextmanager
async def at_manager_tier(
    env: WorkflowEnvironment, task_queue: str, policy: Policy | None = None, discount: float = 20
) -> AsyncIterator[tuple[WorkflowHandle, RecordingNotifier, MemoryConnector]]:  # type: ignore[type-arg]
    """A deal whose discount waits on the sales manager tier."""
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=discount)
    crm = MemoryConnector([deal])
    async with handoff_worker(env.client, task_queue, crm) as notifier:
        handle = await start(env.client, task_queue, deal.id, policy)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        yield handle, notifier, crm


async def test_approver_is_reminded_before_the_deadline(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """20h into a 1-day tier with a 4h reminder, the manager is asked again."""
    async with at_manager_tier(time_env, task_queue) as (handle, notifier, _):
        await skip(time_env, handle, timedelta(hours=21))
        st = await until(handle, lambda s: any(h.kind == "reminder" for h in s.history))
        await eventually(
            lambda: any("[reminder]" in s for s in notifier.subjects_for(MANAGER)),
            "[reminder] notice",
        )
        assert st.owner == [MANAGER] and st.pending_approval is not None
        assert not st.pending_approval.escalated


async def test_overdue_approval_escalates_to_the_next_approver(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Past the tier's deadline the VP is added and can decide the manager's tier."""
    async with at_manager_tier(time_env, task_queue) as (handle, notifier, _):
        await skip(time_env, handle, timedelta(hours=25))
        st = await until(
            handle, lambda s: bool(s.pending_approval and s.pending_approval.escalated)
        )
        assert st.owner == [MANAGER, VP]
        assert st.sla_state == "escalated"
        await eventually(
            lambda: any("[escalation]" in s for s in notifier.subjects_for(VP)),
            "[escalation] notice",
        )
        await signal(handle, Msg.APPROVE, approver=VP, reason="Covering for Maya")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert [(a.tier, a.approver) for a in st.approvals] == [("sales_manager", VP)]


async def test_exhausted_ladder_parks_as_an_exception(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """When the escalation also passes, the deal parks on approval_timeout for sales ops."""
    async with at_manager_tier(time_env, task_queue) as (handle, _, crm):
        await skip(time_env, handle, timedelta(hours=49))
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EXCEPTION)
        assert st.owner == [SALES_OPS]
        assert [e.kind for e in st.exceptions if e.resolved_at is None] == ["approval_timeout"]
        await eventually(
            lambda: any(
                t.data["owner_email"] == SALES_OPS and "approval timeout" in t.data["subject"]
                for t in crm.records(deal_id_of(handle), "task")
            ),
            "sales ops' approval-timeout task",
        )
        await signal(
            handle,
            Msg.RESOLVE_EXCEPTION,
            kind="approval_timeout",
            by=SALES_OPS,
            note="Maya is back",
        )
        st = await until(
            handle, lambda s: s.pending_approval is not None and s.pending_approval.round == 2
        )
        assert st.owner == [MANAGER]


async def test_exhausted_ladder_rejects_when_policy_says_so(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """With on_exhausted: reject, the owner is asked for new terms instead."""
    policy = policy_with(discounts__on_exhausted="reject")
    async with at_manager_tier(time_env, task_queue, policy) as (handle, _, _):
        await skip(time_env, handle, timedelta(hours=49))
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
        assert st.owner == [OWNER]
        assert "exhausted" in st.waiting_for


async def test_approver_can_delegate_to_a_named_delegate(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """After delegation only the delegate may decide; the delegator is refused."""
    async with at_manager_tier(time_env, task_queue) as (handle, notifier, _):
        await signal(
            handle, Msg.DELEGATE, approver=MANAGER, delegate=DELEGATE, reason="On leave this week"
        )
        st = await until(handle, lambda s: s.owner == [DELEGATE])
        await eventually(
            lambda: any("delegated" in s for s in notifier.subjects_for(DELEGATE)),
            "delegated notice",
        )
        await signal(handle, Msg.APPROVE, approver=MANAGER, reason="changed my mind")
        st = await until(handle, lambda s: any(not h.accepted for h in s.history))
        assert st.stage == Stage.DEAL_DESK
        await signal(handle, Msg.APPROVE, approver=DELEGATE, reason="Within guidance")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert st.approvals[-1].approver == DELEGATE


async def test_deal_owner_can_recall_the_request(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A recall by the owner ends the round; anyone else's recall is refused."""
    async with at_manager_tier(time_env, task_queue) as (handle, _, _):
        await signal(handle, Msg.RECALL, by=VP, reason="not mine to recall")
        st = await until(handle, lambda s: any(not h.accepted for h in s.history))
        assert st.waiting_on == WaitingOn.DISCOUNT_APPROVAL
        await signal(handle, Msg.RECALL, by=OWNER, reason="Customer wants a new quote")
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
        assert "recalled" in st.waiting_for and st.owner == [OWNER]
        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=8)
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert st.approvals == []


async def test_rejection_asks_the_owner_for_new_terms(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A rejected discount waits for new terms, then asks only what they need."""
    async with at_manager_tier(time_env, task_queue) as (handle, _, crm):
        await signal(handle, Msg.REJECT, approver=MANAGER, reason="Margin too thin")
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
        assert "Margin too thin" in st.waiting_for
        await eventually(
            lambda: any(
                t.data["owner_email"] == OWNER and "Margin too thin" in t.data["subject"]
                for t in crm.records(deal_id_of(handle), "task")
            ),
            "the owner's task to propose new terms",
        )
        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=15)
        st = await until(
            handle, lambda s: s.pending_approval is not None and s.pending_approval.round == 2
        )
        assert st.pending_approval is not None and st.pending_approval.discount_percent == 15
        assert (await status(handle)).owner == [MANAGER]


CFO = "carla.cfo@example.com"


async def test_an_overdue_stage_climbs_the_ladder_and_never_falls_silent(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Qualify overdue: the manager, a week later the VP, and then the VP again weekly."""
    policy = policy_with(
        stages__qualify__then_escalate_to=["vp_sales"],
        stages__qualify__remind_before="0s",
    )
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=20)
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy)
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        for week in range(1, 4):
            await skip(time_env, handle, timedelta(days=7, minutes=5))
            await until(
                handle, lambda s, n=week: [h.kind for h in s.history].count("escalation") == n
            )
        st = await status(handle)
        assert st.sla_state == "escalated" and st.stage == Stage.QUALIFY
        owners = [
            t.data["owner_email"]
            for t in sorted(crm.records(deal.id, "task"), key=lambda r: r.id)
            if "Escalation" in str(t.data["subject"])
        ]
        assert owners == [MANAGER, VP, VP]


async def test_an_approval_climbs_every_rung_before_it_is_exhausted(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Manager overdue: the VP is added; still nobody: the CFO; then it is exhausted."""
    tiers = default_policy().model_dump(mode="json")["discounts"]["tiers"]
    tiers[1] = {**tiers[1], "then_escalate_to": ["cfo"]}
    async with at_manager_tier(time_env, task_queue, policy_with(discounts__tiers=tiers)) as (
        handle,
        _,
        _,
    ):
        await skip(time_env, handle, timedelta(hours=25))
        st = await until(handle, lambda s: s.owner == [MANAGER, VP])
        await skip(time_env, handle, timedelta(days=1, hours=1))
        st = await until(handle, lambda s: s.owner == [MANAGER, VP, CFO])
        assert st.pending_approval is not None and st.pending_approval.escalations == 2
        await skip(time_env, handle, timedelta(days=1, hours=1))
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EXCEPTION)
        assert any("ladder exhausted" in h.detail for h in st.history)

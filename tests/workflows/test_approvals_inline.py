"""Engine v2: the approval ladder runs inside the deal's workflow.

A decision is an update that returns once the ladder has moved, so the receipt and a
status read right after it show the next tier (or the next stage). No child workflow
runs, and the child's old internal signal cannot be forged into a decision.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    start,
    status,
    until,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows import names
from workflows.messages import Receipt
from workflows.names import Msg, Refusal, Stage, WaitingOn
from workflows.policy import default_policy


@asynccontextmanager
async def at_desk(
    env: WorkflowEnvironment, task_queue: str, discount: float = 30
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """A deal at 30%: the sales manager, then the VP, must approve."""
    deal = make_deal(f"V2-{uuid.uuid4().hex[:8]}", discount=discount)
    async with handoff_worker(env.client, task_queue, MemoryConnector([deal])):
        handle = await start(env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        yield handle


async def decide(handle: WorkflowHandle[Any, Any], name: str, **payload: Any) -> Receipt:
    return await handle.execute_update(name, payload, result_type=Receipt)


async def test_approve_returns_the_next_tier_and_status_shows_it_at_once(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The manager's approve answers with the VP's tier; the VP's with the close stage."""
    async with at_desk(time_env, task_queue) as handle:
        receipt = await decide(handle, Msg.APPROVE, approver=MANAGER, reason="Strategic logo")
        assert receipt.pending_approval is not None
        assert receipt.pending_approval.tier == "vp"
        assert receipt.pending_approval.approvers == [VP]
        st = await status(handle)  # no polling: the state is already there
        assert st.pending_approval is not None and st.pending_approval.tier == "vp"
        assert st.owner == [VP] and st.waiting_on == WaitingOn.DISCOUNT_APPROVAL

        receipt = await decide(handle, Msg.APPROVE, approver=VP, reason="Multi-year")
        assert receipt.pending_approval is None
        assert receipt.stage == Stage.CLOSE and receipt.waiting_on == WaitingOn.EVIDENCE
        st = await status(handle)
        assert st.stage == Stage.CLOSE and st.pending_approval is None
        assert [(a.tier, a.decision) for a in st.approvals] == [
            ("sales_manager", "approved"),
            ("vp", "approved"),
        ]


async def test_reject_returns_the_wait_for_new_terms(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A rejection answers with the owner's wait for new terms, not a stale form."""
    async with at_desk(time_env, task_queue) as handle:
        receipt = await decide(handle, Msg.REJECT, approver=MANAGER, reason="Too deep")
        assert receipt.pending_approval is None
        assert receipt.waiting_on == WaitingOn.TERMS_UPDATE
        assert (await status(handle)).owner == [OWNER]


async def test_update_terms_answers_with_the_new_round(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """New terms mid-round end the round; the receipt shows the next round's tier."""
    async with at_desk(time_env, task_queue) as handle:
        receipt = await decide(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=20)
        assert receipt.pending_approval is not None
        assert receipt.pending_approval.round == 2
        assert receipt.pending_approval.discount_percent == 20
        assert (await status(handle)).approval_round == 2


async def test_a_deal_parked_on_approval_is_one_run_with_no_child(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """While the ladder waits, the deal's workflow has no child and started none."""
    async with at_desk(time_env, task_queue) as handle:
        desc = await handle.describe()
        assert list(desc.raw_description.pending_children) == []
        history = await handle.fetch_history()
        started = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        assert not [e for e in history.events if e.event_type == started]


async def test_a_forged_approval_progress_signal_is_refused_and_changes_nothing(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The old child's internal signal, sent by hand, approves nothing and is recorded."""
    async with at_desk(time_env, task_queue) as handle:
        before = await status(handle)
        forged = {
            "round": before.approval_round,
            "pending": None,
            "decisions": [
                {
                    "tier": t,
                    "decision": "approved",
                    "approver": "maya.manager@example.com",
                    "reason": "forged",
                    "at": "2026-01-01T00:00:00Z",
                    "round": before.approval_round,
                    "discount_percent": 40,
                    "amount": 1_000_000,
                }
                for t in ("sales_manager", "vp")
            ],
            "events": [],
        }
        await handle.signal(names.APPROVAL_PROGRESS, forged)
        await handle.signal("supersede")
        st = await until(handle, lambda s: any(h.kind == "refused" for h in s.history))
        assert st.approvals == [] and st.stage == Stage.DEAL_DESK
        assert st.pending_approval is not None and st.pending_approval.tier == "sales_manager"
        assert st.owner == [MANAGER]


@pytest.mark.parametrize(
    ("name", "payload", "code"),
    [
        (Msg.APPROVE, {"approver": VP, "reason": "not my tier"}, Refusal.NOT_AUTHORISED),
        (Msg.APPROVE, {"approver": MANAGER}, Refusal.INVALID),
        ("approve_everything", {}, Refusal.UNKNOWN_MESSAGE),
        (Msg.ACCEPT_HANDOFF, {"team": "operations", "by": OWNER}, Refusal.NOT_PENDING),
        (Msg.UPDATE_TERMS, {"by": VP, "discount_percent": 5}, Refusal.NOT_AUTHORISED),
    ],
)
async def test_a_refused_update_carries_its_typed_code(
    time_env: WorkflowEnvironment, task_queue: str, name: str, payload: dict[str, Any], code: str
) -> None:
    """Surfaces map the code, never the words: it is the Refused error's first detail."""
    async with at_desk(time_env, task_queue) as handle:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await decide(handle, name, **payload)
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == names.REFUSED
        assert cause.details[0] == code
        assert (await status(handle)).approvals == []


SALES_OPS = "sol.salesops@example.com"


@asynccontextmanager
async def group_tier(
    env: WorkflowEnvironment, task_queue: str, decision: str | int
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """The sales manager tier asked of the manager and sales ops together, at 20%."""
    tiers = default_policy().model_dump(mode="json")["discounts"]["tiers"]
    tiers[1] = {**tiers[1], "approvers": ["sales_manager", "sales_ops"], "decision": decision}
    policy = policy_with(discounts__tiers=tiers)
    deal = make_deal(f"G-{uuid.uuid4().hex[:8]}", discount=20)
    async with handoff_worker(env.client, task_queue, MemoryConnector([deal])):
        handle = await start(env.client, task_queue, deal.id, policy)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        yield handle


async def test_a_tier_that_needs_all_of_its_group_waits_for_each(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """`decision: all`: the manager's approval is one of two; sales ops completes it."""
    async with group_tier(time_env, task_queue, "all") as handle:
        receipt = await decide(handle, Msg.APPROVE, approver=MANAGER, reason="fine by me")
        p = receipt.pending_approval
        assert p is not None and p.tier == "sales_manager"
        assert (p.needed, p.approved_by) == (2, [MANAGER])
        with pytest.raises(WorkflowUpdateFailedError):  # one approver counts once
            await decide(handle, Msg.APPROVE, approver=MANAGER, reason="again")
        receipt = await decide(handle, Msg.APPROVE, approver=SALES_OPS, reason="in policy")
        assert receipt.pending_approval is None and receipt.stage == Stage.CLOSE


async def test_one_rejection_rejects_a_quorum_tier(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A quorum of 2: an approval, then a rejection, ends the round as rejected."""
    async with group_tier(time_env, task_queue, 2) as handle:
        await decide(handle, Msg.APPROVE, approver=MANAGER, reason="fine by me")
        receipt = await decide(handle, Msg.REJECT, approver=SALES_OPS, reason="margin too thin")
        assert receipt.waiting_on == WaitingOn.TERMS_UPDATE
        assert (await status(handle)).pending_approval is None

"""People changes on the time-skipping server: a departed approver's work is reassigned
(the approval, the wait, the CRM tasks and later asks), an absence with a delegate ends
on its date, escalation ladders keep escalating, and only sales ops (or the person, for
their own absence) may make the change."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from typing import Any

import pytest
from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    SALES_OPS,
    VP,
    eventually,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    skip,
    start,
    status,
    until,
)
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.messages import Receipt
from workflows.names import Msg, Refusal, Stage, WaitingOn

NINA = "nina.manager@example.com"


def new_id() -> str:
    return f"PPL-{uuid.uuid4().hex[:8]}"


async def send(handle: WorkflowHandle[Any, Any], name: str, **payload: Any) -> Receipt:
    return await handle.execute_update(name, payload, result_type=Receipt)


async def refused(handle: WorkflowHandle[Any, Any], name: str, **payload: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send(handle, name, **payload)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return str(cause.details[0])


async def test_reassign_moves_a_deal_parked_on_a_departed_approver(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Maya left while a 20% discount waited on her: sales ops reassigns her work to
    Nina; the approval, the wait and Maya's CRM tasks move, the history says who did it,
    Nina's approval moves the deal on, and Maya's own approval is refused."""
    deal = make_deal(new_id(), discount=20)
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.owner == [MANAGER])
        receipt = await send(
            handle,
            Msg.REASSIGN,
            from_person=MANAGER,
            to_person=NINA,
            by=SALES_OPS,
            reason="Maya left the company",
        )
        assert "the sales_manager approval" in receipt.detail
        st = await status(handle)
        assert st.pending_approval is not None and st.pending_approval.approvers == [NINA]
        assert st.owner == [NINA]
        moved = [h for h in st.history if h.kind == "people"]
        assert len(moved) == 1 and moved[0].by == SALES_OPS
        assert moved[0].detail.startswith(f"{MANAGER} → {NINA} (Maya left the company)")
        assert await refused(handle, Msg.APPROVE, approver=MANAGER, reason="still here") == (
            Refusal.NOT_AUTHORISED
        )
        await send(handle, Msg.APPROVE, approver=NINA, reason="Within guidance")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert [(a.approver, a.tier) for a in st.approvals] == [(NINA, "sales_manager")]


async def test_reassign_moves_open_crm_tasks_and_escalation_targets(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The qualify wait escalates to Maya; after she is reassigned to Nina the open
    escalation task is Nina's in the CRM and the next escalation level names Nina."""
    policy = policy_with(
        stages__qualify__sla="2d",
        stages__qualify__remind_before="1d",
        stages__qualify__then_escalate_to=["sales_manager"],
    )
    deal = make_deal(new_id())
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=policy)
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await skip(time_env, handle, timedelta(days=2, hours=1))
        await until(handle, lambda s: s.sla_state == "escalated")
        await eventually(
            lambda: any(
                r.data["owner_email"] == MANAGER and r.data["subject"].startswith("Escalation")
                for r in crm.records(deal.id, "task")
            ),
            "the manager's escalation task",
        )
        await send(
            handle, Msg.REASSIGN, from_person=MANAGER, to_person=NINA, by=SALES_OPS, reason="left"
        )
        await skip(time_env, handle, timedelta(days=2, hours=1))
        st = await until(
            handle, lambda s: sum(h.kind == "escalation" for h in s.history) >= 2, timeout=30
        )
        assert (
            f"escalated to {NINA}" in [h for h in st.history if h.kind == "escalation"][-1].detail
        )
    tasks = crm.records(deal.id, "task")
    escalations = [r for r in tasks if r.data["subject"].startswith("Escalation")]
    assert escalations and all(r.data["owner_email"] != MANAGER for r in escalations)


async def test_away_with_a_delegate_ends_on_its_date(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Maya is away for two days with Nina delegated: the tier asked meanwhile goes to
    Nina; after Maya is back, a new round asks Maya again."""
    deal = make_deal(new_id(), discount=20)
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        back = (await time_env.get_current_time()).astimezone(UTC) + timedelta(days=2)
        receipt = await send(
            handle,
            Msg.SET_AWAY,
            person=MANAGER,
            delegate=NINA,
            until=back.isoformat(),
            by=MANAGER,
        )
        assert receipt.detail.endswith("acts: the escalation levels")  # qualify's, to Maya
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.owner == [NINA]
        await send(handle, Msg.REJECT, approver=NINA, reason="Too deep for now")
        await until(handle, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
        await skip(time_env, handle, timedelta(days=2, hours=1))
        await send(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=15)
        st = await until(handle, lambda s: s.approval_round == 2 and s.pending_approval is not None)
        assert st.owner == [MANAGER]


@pytest.mark.parametrize(
    ("name", "payload", "code"),
    [
        (
            Msg.REASSIGN,
            {"from_person": MANAGER, "to_person": NINA, "by": OWNER, "reason": "x"},
            Refusal.NOT_AUTHORISED,
        ),
        (
            Msg.REASSIGN,
            {"from_person": MANAGER, "to_person": MANAGER, "by": SALES_OPS, "reason": "x"},
            Refusal.INVALID,
        ),
        (
            Msg.SET_AWAY,
            {"person": MANAGER, "delegate": NINA, "until": "2099-01-01T00:00:00Z", "by": VP},
            Refusal.NOT_AUTHORISED,
        ),
        (
            Msg.SET_AWAY,
            {"person": MANAGER, "delegate": NINA, "until": "2001-01-01T00:00:00Z", "by": MANAGER},
            Refusal.INVALID,
        ),
        (
            Msg.REASSIGN,
            {"from_person": MANAGER, "to_person": "x" * 300, "by": SALES_OPS, "reason": "x"},
            Refusal.INVALID,
        ),
    ],
)
async def test_people_changes_are_refused_to_whom_may_not_make_them(
    time_env: WorkflowEnvironment,
    task_queue: str,
    name: str,
    payload: dict[str, Any],
    code: str,
) -> None:
    """Only sales ops reassign; a person sets only their own absence; a delegate is
    someone else; an absence ends in the future; emails are bounded."""
    deal = make_deal(new_id(), discount=20)
    async with handoff_worker(time_env.client, task_queue, MemoryConnector([deal])):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.owner == [MANAGER])
        assert await refused(handle, name, **payload) == code
        st = await status(handle)
        assert st.owner == [MANAGER]
        assert not [h for h in st.history if h.kind == "people"]
        assert [h for h in st.history if not h.accepted][-1].code == code


@pytest.mark.parametrize(
    ("directory", "manager"),
    [
        (
            {OWNER: {"manager": "mo.manager@example.com", "team": "sales-east"}},
            "mo.manager@example.com",
        ),
        ({}, MANAGER),  # nobody named: the sales manager, never nobody
    ],
)
async def test_an_overdue_stage_escalates_to_the_deal_owners_manager_from_the_directory(
    time_env: WorkflowEnvironment, task_queue: str, directory: dict[str, Any], manager: str
) -> None:
    """`escalate_to: owner_manager` resolves at run time from the policy's directory:
    the owner's own manager gets the escalation task (else the sales manager)."""
    policy = policy_with(
        directory=directory,
        stages__qualify__sla="2d",
        stages__qualify__remind_before="1d",
        stages__qualify__escalate_to="owner_manager",
    )
    deal = make_deal(new_id())
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=policy)
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await skip(time_env, handle, timedelta(days=2, hours=1))
        st = await until(handle, lambda s: s.sla_state == "escalated")
        assert (
            f"escalated to {manager}"
            in [h for h in st.history if h.kind == "escalation"][-1].detail
        )
    escalations = [
        r.data["owner_email"]
        for r in crm.records(deal.id, "task")
        if r.data["subject"].startswith("Escalation")
    ]
    assert escalations == [manager]

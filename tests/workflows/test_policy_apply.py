"""`apply_policy` on the time-skipping server: an open handoff moves to a new policy;
approvals given stay given, the tier asked now is re-planned under the new people, the
history says who moved it, and only sales ops may; the same policy twice is a duplicate."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    SALES_OPS,
    VP,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    start,
    status,
    until,
)
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.messages import Receipt
from workflows.names import Msg, Refusal, Stage
from workflows.policy import default_policy

NEW_VP = "vera.vp@example.com"


async def send(handle: WorkflowHandle[Any, Any], name: str, **payload: Any) -> Receipt:
    return await handle.execute_update(name, payload, result_type=Receipt)


async def at_vp_tier(handle: WorkflowHandle[Any, Any]) -> None:
    await give_evidence(handle, *QUALIFY_EVIDENCE)
    await until(handle, lambda s: s.owner == [MANAGER])
    await send(handle, Msg.APPROVE, approver=MANAGER, reason="ok")
    await until(handle, lambda s: s.owner == [VP])


async def test_an_open_handoff_moves_to_the_new_policy_keeping_given_approvals(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """At the VP tier, ops apply a policy with a new VP: Maya's approval stays, the VP
    tier is asked of the new VP, status shows the new version, Victor may no longer
    approve, and the new VP's approval closes the ladder."""
    people = {**default_policy().people, "vp_sales": [NEW_VP]}
    new = policy_with(people=people)
    deal = make_deal(f"PA-{uuid.uuid4().hex[:8]}", discount=30)
    async with handoff_worker(time_env.client, task_queue, MemoryConnector([deal])):
        handle = await start(time_env.client, task_queue, deal.id)
        await at_vp_tier(handle)
        receipt = await send(
            handle,
            Msg.APPLY_POLICY,
            policy=new.model_dump(mode="json"),
            by=SALES_OPS,
            reason="Vera is the VP now",
        )
        assert receipt.detail == f"moved to policy {new.version}; the approval round is re-planned"
        st = await until(handle, lambda s: s.owner == [NEW_VP])
        assert st.policy_version == new.version
        assert [(a.approver, a.tier) for a in st.approvals] == [(MANAGER, "sales_manager")]
        line = [h for h in st.history if h.detail.startswith("policy ")][-1]
        assert line.by == SALES_OPS and "Vera is the VP now" in line.detail
        with pytest.raises(WorkflowUpdateFailedError):
            await send(handle, Msg.APPROVE, approver=VP, reason="still mine?")
        await send(handle, Msg.APPROVE, approver=NEW_VP, reason="fine")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert [a.approver for a in st.approvals if a.decision == "approved"] == [MANAGER, NEW_VP]


@pytest.mark.parametrize(
    ("by", "same", "code"),
    [(OWNER, False, Refusal.NOT_AUTHORISED), (SALES_OPS, True, Refusal.DUPLICATE)],
)
async def test_applying_a_policy_is_refused_to_non_ops_and_when_already_on_it(
    time_env: WorkflowEnvironment, task_queue: str, by: str, same: bool, code: str
) -> None:
    policy = default_policy() if same else policy_with(trigger_crm_stages=["new", "qualified"])
    deal = make_deal(f"PA-{uuid.uuid4().hex[:8]}", discount=30)
    async with handoff_worker(time_env.client, task_queue, MemoryConnector([deal])):
        handle = await start(time_env.client, task_queue, deal.id)
        await until(handle, lambda s: s.waiting_on == "evidence")
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await send(handle, Msg.APPLY_POLICY, policy=policy.model_dump(mode="json"), by=by)
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError) and cause.details[0] == code
        assert (await status(handle)).policy_version == default_policy().version

"""`owner_manager` from the CRM, on the time-skipping server: the owner's manager as the
CRM says (Salesforce `ManagerId`, or a HubSpot team through the policy's
`team_managers`) wins over the policy directory, follows an owner change made in the
CRM, and a CRM that names nobody, or fails, leaves the policy to decide without parking
the deal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from support.handoffs import (
    MANAGER,
    OWNER,
    VP,
    handoff_worker,
    make_deal,
    policy_with,
    skip,
    start,
    until,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors.errors import Unavailable
from connectors.memory import MemoryConnector
from workflows.messages import DealStatus
from workflows.names import Msg, WaitingOn

REP = "rita.rep@example.com"
CRM_BOSS = "cora.crm-boss@example.com"  # Sam's manager in the CRM
RITA_BOSS = "rob.west@example.com"  # Rita's manager in the CRM
DIRECTORY_BOSS = "dora.directory@example.com"  # Sam's manager in the policy directory


def escalation_policy(directory: Any = None, **changes: Any) -> Any:
    """Qualify escalates to `owner_manager` two days in; the directory names Dora."""
    return policy_with(
        directory={OWNER: {"manager": DIRECTORY_BOSS}} if directory is None else directory,
        stages__qualify__sla="2d",
        stages__qualify__remind_before="1d",
        stages__qualify__escalate_to="owner_manager",
        **changes,
    )


def escalated_to(crm: MemoryConnector, deal_id: str) -> list[str]:
    """Who the CRM's escalation tasks went to."""
    return [
        str(r.data["owner_email"])
        for r in crm.records(deal_id, "task")
        if str(r.data["subject"]).startswith("Escalation")
    ]


def manager_notes(st: DealStatus) -> list[str]:
    return [h.detail for h in st.history if "manager" in h.detail or "team" in h.detail]


async def escalate(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> DealStatus:
    await skip(env, handle, timedelta(days=2, hours=1))
    return await until(handle, lambda s: s.sla_state == "escalated")


async def test_an_escalation_to_owner_manager_reaches_the_managers_named_by_the_crm(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Sam's manager in the CRM gets the escalation, not the directory's; once the rep
    hands the deal to Rita in the CRM, the escalation still to come goes to Rita's."""
    deal = make_deal(f"OM-{uuid.uuid4().hex[:8]}")
    crm = MemoryConnector([deal])
    crm.managers = {OWNER: CRM_BOSS, REP: RITA_BOSS}
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=escalation_policy())
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        assert f"{OWNER}'s manager in the CRM: {CRM_BOSS}" in manager_notes(st)
        st = await escalate(time_env, handle)
        assert any(
            f"escalated to {CRM_BOSS}" in h.detail for h in st.history if h.kind == "escalation"
        )
        assert escalated_to(crm, deal.id) == [CRM_BOSS]

    second = make_deal(f"OM-{uuid.uuid4().hex[:8]}")
    crm.upsert_deal(second)
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, second.id, policy=escalation_policy())
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        crm.update_deal(second.id, {"owner_email": REP}, key=f"rep-{uuid.uuid4()}")
        await handle.signal(
            Msg.DEAL_CHANGED,
            {
                "fields": {"owner_email": REP},
                "event_id": f"evt-{uuid.uuid4()}",
                "occurred_at": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
                "changed_by": REP,
            },
        )
        st = await until(
            handle, lambda s: f"{REP}'s manager in the CRM: {RITA_BOSS}" in manager_notes(s)
        )
        assert (
            f"escalations to the owner's manager move from {CRM_BOSS} to {RITA_BOSS}"
            in manager_notes(st)
        )
        st = await escalate(time_env, handle)
        assert any(
            f"escalated to {RITA_BOSS}" in h.detail for h in st.history if h.kind == "escalation"
        )
    assert escalated_to(crm, second.id) == [RITA_BOSS]


async def test_a_hubspot_team_names_the_manager_through_the_policy(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """HubSpot owners carry a primary team, not a manager: the policy's `team_managers`
    says who manages the team, and that person gets the escalation."""
    deal = make_deal(f"OM-{uuid.uuid4().hex[:8]}")
    crm = MemoryConnector([deal])
    crm.teams = {OWNER: "Sales East"}
    policy = escalation_policy(team_managers={"Sales East": VP})
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, policy=policy)
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        assert any("Sales East, managed by " + VP in n for n in manager_notes(st))
        await escalate(time_env, handle)
    assert escalated_to(crm, deal.id) == [VP]


async def test_a_crm_that_names_no_manager_or_fails_leaves_the_policy_to_decide(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No manager in the CRM: the directory's; the CRM down: the directory's too, the
    trail says why, and the deal is not parked (it escalates on time); no directory
    entry either: the sales manager."""
    cases = [
        (None, {OWNER: {"manager": DIRECTORY_BOSS}}, DIRECTORY_BOSS, "names no manager"),
        (Unavailable("down", crm="memory"), {OWNER: {"manager": DIRECTORY_BOSS}},
         DIRECTORY_BOSS, "could not read"),
        (None, {}, MANAGER, "names no manager"),
    ]  # fmt: skip
    for error, directory, expected, note in cases:
        deal = make_deal(f"OM-{uuid.uuid4().hex[:8]}")
        crm = MemoryConnector([deal])
        crm.manager_error = error
        policy = escalation_policy(directory=directory)
        async with handoff_worker(time_env.client, task_queue, crm):
            handle = await start(time_env.client, task_queue, deal.id, policy=policy)
            st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE, timeout=60)
            notes = manager_notes(st)
            assert any(note in n and f"owner_manager is {expected}" in n for n in notes), notes
            st = await escalate(time_env, handle)
            assert st.stage == "qualify" and not st.exceptions
        assert escalated_to(crm, deal.id) == [expected]
        assert crm.calls["manager_of"] == (3 if error else 1)  # bounded tries, then fallback

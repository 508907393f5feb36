"""Evidence gate, handoff contracts, exceptions pausing clocks, smart re-approval."""

from __future__ import annotations

import uuid
from datetime import timedelta

from support.handoffs import (
    MANAGER,
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    eventually,
    give_evidence,
    handoff_worker,
    make_deal,
    signal,
    skip,
    start,
    until,
)
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.names import Msg, Stage, WaitingOn


def new_id() -> str:
    return f"D-{uuid.uuid4().hex[:8]}"


async def test_evidence_gate_refuses_to_advance_until_all_evidence(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Three of four qualification proofs leave the deal in qualify, naming the fourth."""
    deal = make_deal(new_id(), discount=5)
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE[:3])
        st = await until(handle, lambda s: len(s.evidence) == 3 and s.waiting_on != "nothing")
        assert st.stage == Stage.QUALIFY and st.waiting_on == WaitingOn.EVIDENCE
        assert st.waiting_for == "evidence: timeline_confirmed"
        assert st.owner == [OWNER]
        await give_evidence(handle, "timeline_confirmed")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert any(h.detail.startswith("5% is within the automatic tier") for h in st.history)


async def test_qualify_sla_reminds_the_owner_then_escalates_to_the_manager(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A 7-day qualify SLA: a reminder task at day 5, an escalation task at day 7."""
    deal = make_deal(new_id())
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await skip(time_env, handle, timedelta(days=5, hours=1))
        st = await until(handle, lambda s: s.sla_state == "due_soon")
        await skip(time_env, handle, timedelta(days=2))
        st = await until(handle, lambda s: s.sla_state == "escalated")
        assert st.stage == Stage.QUALIFY
    tasks = {
        (r.data["owner_email"], r.data["subject"].split(":")[0])
        for r in crm.records(deal.id, "task")
    }
    assert (OWNER, "Reminder") in tasks and (MANAGER, "Escalation") in tasks


async def test_missing_contract_field_creates_a_task_and_waits(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No site notes at sales→ops: the owner gets a task; filling the field moves on."""
    deal = make_deal(new_id(), discount=0, site_notes="")
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)  # a contract counts from close on
        await give_evidence(handle, "contract_signed")
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.HANDOFF_FIELDS)
        assert st.stage == Stage.SALES_TO_OPS and st.missing_fields == ["site_notes"]
        await eventually(
            lambda: (
                [
                    t.data["owner_email"]
                    for t in crm.records(deal.id, "task")
                    if "site_notes" in t.data["subject"]
                ]
                == [OWNER]
            ),
            "one site_notes task for the owner",
        )

        crm.update_deal(deal.id, {"site_notes": "Dock 4, ask for Lee"}, key="test")
        await signal(
            handle, Msg.DEAL_CHANGED, fields={"site_notes": "Dock 4, ask for Lee"}, event_id="evt-1"
        )
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        assert st.owner == [OPS] and st.missing_fields == []


async def test_contract_is_rechecked_in_the_crm_without_a_webhook(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """With no change event, the hourly recheck reads the filled field from the CRM."""
    deal = make_deal(new_id(), discount=0, primary_contact="")
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.missing_fields == ["primary_contact"])
        crm.update_deal(deal.id, {"primary_contact": "ada@acme.example"}, key="test")
        await skip(time_env, handle, timedelta(hours=1, minutes=1))
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        assert st.missing_fields == []


async def test_exception_pauses_the_stage_clock_and_resolution_resumes_it(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Ten days under legal review do not breach a 7-day SLA; resolving restarts the clock."""
    deal = make_deal(new_id())
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        st = await until(handle, lambda s: s.due_at is not None)
        assert st.due_at is not None
        first_due = st.due_at
        await signal(
            handle,
            Msg.RAISE_EXCEPTION,
            kind="legal_review",
            by=OWNER,
            note="Customer redlines the DPA",
        )
        st = await until(handle, lambda s: s.sla_state == "paused")
        await skip(time_env, handle, timedelta(days=10))
        st = await until(handle, lambda s: any(h.kind == "escalation" for h in s.history))
        assert st.sla_state == "paused"  # the stage clock did not run...
        assert st.exceptions[0].clock is not None and st.exceptions[0].clock.level >= 1
        assert "legal_review" in st.history[-1].detail  # ...but the exception's own SLA did
        await signal(
            handle,
            Msg.RESOLVE_EXCEPTION,
            kind="legal_review",
            by="lee.legal@example.com",
            note="DPA agreed",
        )
        st = await until(handle, lambda s: s.sla_state == "ok")
        assert st.due_at is not None and st.due_at - first_due >= timedelta(days=10)
        assert st.exceptions[0].resolved_by == "lee.legal@example.com"


async def test_update_terms_reasks_only_the_approvals_it_affects(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """30% → 35% after both approvals re-asks the VP only; the manager's 25% still holds."""
    deal = make_deal(new_id(), discount=30)
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
        await signal(handle, Msg.APPROVE, approver=MANAGER, reason="ok up to 25")
        await until(handle, lambda s: s.pending_approval is not None and s.owner == [VP])
        await signal(handle, Msg.APPROVE, approver=VP, reason="ok at 30")
        await until(handle, lambda s: s.stage == Stage.CLOSE)

        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=35)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.stage == Stage.DEAL_DESK
        assert st.pending_approval is not None and st.pending_approval.tier == "vp"
        assert st.owner == [VP]
        await signal(handle, Msg.APPROVE, approver=VP, reason="ok at 35")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert [(a.tier, a.discount_percent) for a in st.approvals] == [
            ("sales_manager", 30),
            ("vp", 30),
            ("vp", 35),
        ]

        await signal(handle, Msg.UPDATE_TERMS, by=OWNER, discount_percent=20)
        st = await until(handle, lambda s: s.terms.discount_percent == 20)
        assert st.stage == Stage.CLOSE and st.pending_approval is None

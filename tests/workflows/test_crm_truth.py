"""The CRM stays the system of record: what a rep changes there drives the handoff, and
Handoff never writes over it with something older (issue: CRM truth).

The rep's edit is made in the (memory) CRM and delivered as the `deal_changed` message
the HubSpot webhook ingress and the Salesforce change feed send.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    eventually,
    give_evidence,
    handoff_worker,
    make_deal,
    start,
    status,
    until,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.feed import DispatchRequest, FeedActivities
from connectors.base import Deal, DealChange
from connectors.memory import MemoryConnector
from worker.http.ingress.temporal_starter import TemporalStarter
from workflows.messages import Receipt
from workflows.names import Msg, Stage, WaitingOn
from workflows.policy import default_policy

REP = "rita.rep@example.com"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@asynccontextmanager
async def deal_in_crm(
    env: WorkflowEnvironment, task_queue: str, discount: float = 12, **fields: str
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], MemoryConnector, Deal]]:
    deal = make_deal(f"CT-{uuid.uuid4().hex[:8]}", discount=discount, **fields)
    crm = MemoryConnector([deal])
    async with handoff_worker(env.client, task_queue, crm):
        yield await start(env.client, task_queue, deal.id), crm, deal


async def crm_until(read: Any, check: Any, timeout: float = 10) -> Any:
    """Poll what the CRM holds until `check` holds (Handoff writes it in an activity)."""
    deadline = time.monotonic() + timeout
    while not check(value := read()):
        assert time.monotonic() < deadline, value
        await asyncio.sleep(0.05)
    return value


async def rep_edits(
    handle: WorkflowHandle[Any, Any],
    crm: MemoryConnector,
    deal: Deal,
    at: datetime,
    **fields: str,
) -> None:
    """A rep edits the deal in the CRM; the change arrives as `deal_changed`."""
    crm.update_deal(deal.id, dict(fields), key=f"rep-{uuid.uuid4()}")
    await handle.signal(
        Msg.DEAL_CHANGED,
        {
            "fields": fields,
            "event_id": f"evt-{uuid.uuid4()}",
            "occurred_at": at.isoformat(),
            "changed_by": REP,
        },
    )


async def test_terms_edited_in_the_crm_are_asked_again_with_the_new_figures(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """12% → 35% in the CRM: the pending approval shows 35%, the VP is asked, by the rep."""
    async with deal_in_crm(time_env, task_queue) as (handle, crm, deal):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.pending_approval is not None and st.pending_approval.discount_percent == 12
        await rep_edits(handle, crm, deal, T0, discount_percent="35", amount="90000")
        st = await until(
            handle,
            lambda s: s.pending_approval is not None and s.pending_approval.discount_percent == 35,
        )
        assert st.terms.discount_percent == 35 and st.terms.amount == 90_000
        assert st.pending_approval.amount == 90_000
        assert any(h.kind == "terms" and h.by == REP for h in st.history)
        await handle.execute_update(
            Msg.APPROVE, {"approver": MANAGER, "reason": "ok"}, result_type=Receipt
        )
        st = await until(handle, lambda s: s.owner == [VP])  # 35% now needs the VP too
        assert st.pending_approval is not None and st.pending_approval.tier == "vp"


async def test_a_salesforce_change_that_repeats_old_terms_does_not_undo_new_ones(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The Salesforce feed sends every mapped field with each change. After the owner
    moves the terms to 20% with `update_terms`, a rep's edit of the site notes carries
    the CRM's unchanged 12% and amount: the terms stay 20%. A discount the rep really
    changes (to 35%) still acts."""
    async with deal_in_crm(time_env, task_queue) as (handle, crm, deal):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        await handle.execute_update(
            Msg.UPDATE_TERMS, {"by": OWNER, "discount_percent": 20}, result_type=Receipt
        )
        everything = {"amount": "100000", "discount_percent": "12", "crm_stage": "new"}
        receipt = await feed_delivers(handle, crm, deal, T0, **everything, site_notes="Dock 9")
        assert receipt.accepted, receipt
        st = await status(handle)
        assert st.terms.discount_percent == 20, st.terms
        assert [h.by for h in st.history if h.kind == "terms"] == [OWNER]
        later = T0 + timedelta(minutes=1)
        await feed_delivers(handle, crm, deal, later, **{**everything, "discount_percent": "35"})
        st = await status(handle)
        assert st.terms.discount_percent == 35
        assert [h.by for h in st.history if h.kind == "terms"] == [OWNER, REP]


async def feed_delivers(
    handle: WorkflowHandle[Any, Any], crm: MemoryConnector, deal: Deal, at: datetime, **fields: str
) -> Receipt:
    """The rep saves the record and the change feed delivers all its mapped fields, as
    an update (its receipt)."""
    crm.update_deal(deal.id, dict(fields), key=f"rep-{uuid.uuid4()}")
    payload = {"fields": fields, "event_id": f"evt-{uuid.uuid4()}", "occurred_at": at.isoformat()}
    payload["changed_by"] = REP
    result: Receipt = await handle.execute_update(Msg.DEAL_CHANGED, payload, result_type=Receipt)
    return result


async def test_a_deal_closed_lost_by_hand_ends_the_handoff_and_stays_lost(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Closed lost in the CRM: the handoff ends as lost, its tasks are completed, and the
    CRM still says closed lost afterwards."""
    async with deal_in_crm(time_env, task_queue, discount=0) as (handle, crm, deal):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await eventually(
            lambda: any(t.data["status"] == "open" for t in crm.records(deal.id, "task")),
            "an open task",
        )
        await rep_edits(handle, crm, deal, T0, crm_stage="closed_lost")
        result = await handle.result()
        assert result.done and result.outcome == "lost" and result.waiting_on == WaitingOn.NOTHING
        assert crm.get_deal(deal.id).crm_stage == "closed_lost"
        assert all(t.data["status"] == "completed" for t in crm.records(deal.id, "task"))
        assert any(
            "closed_lost in the CRM" in str(n.data["body"]) for n in crm.records(deal.id, "note")
        )


async def test_an_owner_change_moves_the_wait_and_its_tasks(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The rep hands the deal to Rita in the CRM: the qualify wait and its task are hers."""
    async with deal_in_crm(time_env, task_queue) as (handle, crm, deal):
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        assert st.owner == [OWNER]
        await rep_edits(handle, crm, deal, T0, owner_email=REP)
        st = await until(handle, lambda s: s.owner == [REP])
        tasks = await crm_until(
            lambda: [t.data for t in crm.records(deal.id, "task") if t.data["status"] == "open"],
            lambda ts: bool(ts) and all(t["owner_email"] == REP for t in ts),
        )
        assert [t["subject"].split(":")[0] for t in tasks] == ["Qualify the deal"]


async def test_a_feed_change_in_the_trigger_stage_reaches_the_handoff(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The change feed reads a new owner while the deal is still in its trigger stage:
    the start it asks for and the change carry different ids, so the change is applied
    (with one id for both, the workflow dropped the change as a duplicate)."""
    async with deal_in_crm(time_env, task_queue) as (handle, crm, deal):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        crm.update_deal(deal.id, {"owner_email": REP}, key="rep-owner")
        policy = default_policy()
        change = DealChange(
            deal_id=deal.id,
            changed_at=T0,
            fields={"crm_stage": "new", "owner_email": REP, "name": deal.name},
        )
        feed = FeedActivities(TemporalStarter(time_env.client, policy, task_queue))
        await feed.dispatch(
            DispatchRequest(
                crm="memory", changes=[change], trigger_crm_stages=policy.trigger_crm_stages
            )
        )
        st = await until(handle, lambda s: s.owner == [REP])
        assert any("owner changed in the CRM" in h.detail for h in st.history)


async def test_a_late_stale_value_never_satisfies_a_contract(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """site_notes filled at 10:00 and emptied at 10:05, delivered out of order: the
    contract still misses site_notes."""
    async with deal_in_crm(time_env, task_queue, discount=0, site_notes="") as (handle, crm, deal):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.missing_fields == ["site_notes"])
        await rep_edits(handle, crm, deal, T0 + timedelta(minutes=5), site_notes="")
        await handle.signal(  # the 10:00 value arrives last
            Msg.DEAL_CHANGED,
            {
                "fields": {"site_notes": "Dock 4"},
                "event_id": "late-1",
                "occurred_at": T0.isoformat(),
            },
        )
        st = await status(handle)  # a query sees every signal sent before it
        assert st.waiting_on == WaitingOn.HANDOFF_FIELDS and st.missing_fields == ["site_notes"]


async def test_a_delivered_value_the_crm_no_longer_holds_never_passes_a_contract(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A change-feed page read at 10:00 ("Dock 4") reaches the handoff after the rep
    emptied the field again, and before that change: the newest delivery so far, but
    the record says empty, so site_notes stays missing until the CRM really holds it."""
    async with deal_in_crm(time_env, task_queue, discount=0, site_notes="") as (handle, crm, deal):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.missing_fields == ["site_notes"])
        await handle.signal(  # what the CRM held at 10:00; it is empty again now
            Msg.DEAL_CHANGED,
            {
                "fields": {"site_notes": "Dock 4"},
                "event_id": "page-1",
                "occurred_at": T0.isoformat(),
            },
        )
        st = await until(handle, lambda s: any("empty in the CRM" in h.detail for h in s.history))
        assert st.waiting_on == WaitingOn.HANDOFF_FIELDS and st.missing_fields == ["site_notes"]
        assert crm.get_deal(deal.id).fields.get("site_notes", "") == ""
        await rep_edits(handle, crm, deal, T0 + timedelta(minutes=5), site_notes="Dock 9")
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        assert st.missing_fields == []


async def test_handoff_never_writes_the_stage_over_a_reps_change(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The rep moved the CRM stage (no webhook came): Handoff's next stage write leaves
    it, records the conflict and tells the owner."""
    async with deal_in_crm(time_env, task_queue, discount=0) as (handle, crm, deal):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        crm.update_deal(deal.id, {"crm_stage": "negotiation"}, key="rep-direct")
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        st = await until(handle, lambda s: any("not overwritten" in h.detail for h in s.history))
        assert st.stage == Stage.CLOSE
        assert crm.get_deal(deal.id).crm_stage == "negotiation"


async def test_a_stage_moved_ahead_of_the_evidence_raises_a_stage_jump(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Closed won by hand while still qualifying: a stage_jump exception for the manager."""
    async with deal_in_crm(time_env, task_queue) as (handle, crm, deal):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await rep_edits(handle, crm, deal, T0, crm_stage="closed_won")
        st = await until(handle, lambda s: any(e.kind == "stage_jump" for e in s.exceptions))
        exc = next(e for e in st.exceptions if e.kind == "stage_jump")
        assert exc.owner == [MANAGER] and exc.raised_by == REP and st.stage == Stage.QUALIFY


async def test_tasks_are_completed_when_their_wait_ends(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The qualify task is completed once the qualify wait ends."""
    async with deal_in_crm(time_env, task_queue, discount=0) as (handle, crm, deal):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.stage == Stage.SALES_TO_OPS)
        await crm_until(
            lambda: {t.key.split(":")[1]: t.data["status"] for t in crm.records(deal.id, "task")},
            lambda ts: ts.get("qualify") == "completed" and ts.get("close") == "completed",
        )

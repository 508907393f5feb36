"""Record the committed replay histories of the main lead-to-cash scenarios.

Run after a deliberate, patched workflow change (never to paper over a replay failure):

    .venv/bin/python tests/replay/record_histories.py [SCENARIO ...]

(naming scenarios records only those, leaving the other committed histories as they are).

Each scenario runs on the time-skipping server with a memory CRM; the history of the
LeadToCash run (and of any DiscountApproval child, which only handoffs opened before
engine v2 have) is written to tests/replay/histories/<workflow id>.json. The deal ids
carry the engine generation (`R-` v1 with child rounds, `R2-` v2 with inline rounds,
`R3-` v2 with search attributes upserted on change, quotes, people and calendars, `R4-`
opened with one read, taking the older patches as given, plus `parked_from_crm`, the
bench's parked shape): older generations stay committed, so the histories of handoffs
opened then keep replaying. The CRM-truth scenarios (`crm_changes`,
`stage_moved_by_hand`, `reopened`, `stale_deliveries`) send `deal_changed` as the
webhook ingress and the change feed do.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parents[1]))

from support.handoffs import (
    BILLING,
    CFO,
    MANAGER,
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    SALES_OPS,
    VP,
    current_run_id,
    give_evidence,
    handoff_worker,
    make_deal,
    policy_with,
    signal,
    skip,
    start,
    until,
)

from connectors.lines import QuoteLine
from connectors.memory import MemoryConnector
from workflows import names, registry
from workflows.names import Msg, Stage, WaitingOn
from workflows.policy import default_policy

HISTORIES = Path(__file__).with_name("histories")
NINA, VERA = "nina.manager@example.com", "vera.vp@example.com"
#: The engine generation recorded now (see the module docstring).
GENERATION = "R4"
Scenario = Callable[[WorkflowEnvironment, WorkflowHandle], Awaitable[None]]  # type: ignore[type-arg]


async def happy_path(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await signal(h, Msg.APPROVE, approver=MANAGER, reason="Strategic logo")
    await until(h, lambda s: s.pending_approval is not None and s.owner == [VP])
    await signal(h, Msg.APPROVE, approver=VP, reason="Multi-year")
    await until(h, lambda s: s.stage == Stage.CLOSE)
    await give_evidence(h, "contract_signed")
    await until(h, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
    await signal(h, Msg.ACCEPT_HANDOFF, team="operations", by=OPS)
    await give_evidence(h, "delivery_confirmed", by=OPS)
    await until(h, lambda s: s.stage == Stage.CASH)
    await give_evidence(h, "payment_received", by=BILLING)
    await until(h, lambda s: s.done)


async def rejected_then_new_terms(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None)
    await signal(h, Msg.APPROVE, approver="mallory@example.com", reason="refused")
    await signal(h, Msg.REJECT, approver=MANAGER, reason="Too deep")
    await until(h, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
    await signal(h, Msg.UPDATE_TERMS, by=OWNER, discount_percent=8)
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def exception_and_escalation(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    await until(h, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    await signal(h, Msg.RAISE_EXCEPTION, kind="legal_review", by=OWNER, note="DPA redlines")
    await until(h, lambda s: s.sla_state == "paused")
    await skip(env, h, timedelta(days=3))
    await signal(
        h, Msg.RESOLVE_EXCEPTION, kind="legal_review", by="lee.legal@example.com", note="agreed"
    )
    await until(h, lambda s: s.sla_state == "ok")
    await skip(env, h, timedelta(days=8))
    await until(h, lambda s: s.sla_state == "escalated")


async def approval_parked(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None)
    await skip(env, h, timedelta(hours=49))
    await until(h, lambda s: s.waiting_on == WaitingOn.EXCEPTION)


async def parked_from_crm(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """As `handoff bench` parks deals: the qualify evidence is ticked in the CRM, so the
    handoff goes straight to the desk and parks on the manager; then approved."""
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await signal(h, Msg.APPROVE, approver=MANAGER, reason="Strategic logo")
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def delegated_and_recalled(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await signal(h, Msg.DELEGATE, approver=MANAGER, delegate=VP, reason="on leave")
    await until(h, lambda s: s.owner == [VP])
    await signal(h, Msg.RECALL, by=OWNER, reason="customer asked to wait")
    await until(h, lambda s: s.waiting_on == WaitingOn.TERMS_UPDATE)
    await signal(h, Msg.UPDATE_TERMS, by=OWNER, discount_percent=15)
    await until(h, lambda s: s.pending_approval is not None and s.approval_round == 2)
    await skip(env, h, timedelta(hours=25))
    await until(h, lambda s: s.pending_approval is not None and s.pending_approval.escalated)
    await signal(h, Msg.APPROVE, approver=VP, reason="covering for Maya")
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def crm_changes(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """A rep edits the deal in the CRM: terms, then the owner, then closed lost."""
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None)
    for n, fields in enumerate(
        [{"discount_percent": "35"}, {"owner_email": "rita.rep@example.com"}]
    ):
        at = f"2026-12-01T10:0{n}:00+00:00"
        await signal(h, Msg.DEAL_CHANGED, fields=fields, event_id=f"e{n}", occurred_at=at)
    await until(h, lambda s: s.terms.discount_percent == 35 and s.approval_round == 2)
    await signal(h, Msg.DEAL_CHANGED, fields={"crm_stage": "closed_lost"}, event_id="e9")
    await until(h, lambda s: s.done)


async def refusals_recorded(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Refused updates and signals are recorded; the approvals go on."""
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    with contextlib.suppress(WorkflowUpdateFailedError):  # refused, and recorded
        await h.execute_update(Msg.APPROVE, {"approver": VP, "reason": "not my tier"})
    await signal(h, Msg.ADD_EVIDENCE, kind="payment_received", by=OWNER)
    await h.execute_update(Msg.APPROVE, {"approver": MANAGER, "reason": "ok"})
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def terms_changed_mid_round(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await signal(h, Msg.RAISE_EXCEPTION, kind="scope_change", by=OWNER, note="one more site")
    await signal(h, Msg.RESOLVE_EXCEPTION, kind="scope_change", by=MANAGER, note="agreed")
    await signal(h, Msg.UPDATE_TERMS, by=OWNER, discount_percent=20)
    await until(h, lambda s: s.approval_round == 2 and s.pending_approval is not None)
    await signal(h, Msg.APPROVE, approver=MANAGER, reason="20% is fine")
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def business_calendar(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Clocks on the sales team's business hours: a 4h qualify SLA escalates within
    three days whatever the weekday, then the manager's tier runs on the same calendar."""
    await until(h, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    await skip(env, h, timedelta(days=3, hours=1))
    await until(h, lambda s: s.sla_state == "escalated")
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await signal(h, Msg.APPROVE, approver=MANAGER, reason="Within guidance")
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def people_moves(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """The manager is away with a delegate, then leaves: her approval is reassigned."""
    await until(h, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    await h.execute_update(
        Msg.SET_AWAY,
        {"person": VP, "delegate": CFO, "until": "2099-01-01T00:00:00+00:00", "by": VP},
    )
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await h.execute_update(
        Msg.REASSIGN,
        {"from_person": MANAGER, "to_person": NINA, "by": SALES_OPS, "reason": "left"},
    )
    await signal(h, Msg.APPROVE, approver=NINA, reason="Within guidance")
    await until(h, lambda s: s.pending_approval is not None and s.owner == [CFO])
    await signal(h, Msg.APPROVE, approver=CFO, reason="covering for Victor")
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def policy_moved(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Ops move the deal to a policy with a new VP while the VP tier is asked."""
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [MANAGER])
    await signal(h, Msg.APPROVE, approver=MANAGER, reason="Strategic logo")
    await until(h, lambda s: s.pending_approval is not None and s.owner == [VP])
    people = {**default_policy().people, "vp_sales": [VERA]}
    new = policy_with(people=people).model_dump(mode="json")
    await h.execute_update(Msg.APPLY_POLICY, {"policy": new, "by": SALES_OPS})
    await until(h, lambda s: s.owner == [VERA])
    await signal(h, Msg.APPROVE, approver=VERA, reason="Multi-year")
    await until(h, lambda s: s.stage == Stage.CLOSE)


#: Scenarios that run on a policy other than the default.
POLICIES = {
    "business_calendar": lambda: policy_with(
        calendars={
            "sales": {
                "timezone": "America/New_York",
                "hours": "09:00-17:00",
                "holidays": ["2026-12-25"],
                "roles": ["deal_owner", "sales_rep", "sales_manager"],
            }
        },
        stages__qualify__sla="4h",
        stages__qualify__remind_before="1h",
    ),
    "owner_managers": lambda: policy_with(
        stages__qualify__sla="2d",
        stages__qualify__remind_before="1d",
        stages__qualify__escalate_to="owner_manager",
    ),
}


#: 100 seats at 1,000 (cost 500) and an install at 5,000 with 45% off (cost 1,000).
QUOTE_LINES = [
    QuoteLine(id="L1", name="Seats", quantity=100, unit_price=1000, unit_cost=500),
    QuoteLine(id="L2", name="Install", unit_price=5000, discount_percent=45, unit_cost=1000),
]


async def quote_desk(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Quote lines: a 45% line asks the CFO, who asks the rep first; a deeper line in the
    CRM asks the CFO again."""
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None and s.owner == [CFO])
    await h.execute_update(Msg.REQUEST_INFO, {"approver": CFO, "question": "Why 45%?"})
    await h.execute_update(Msg.ANSWER_INFO, {"by": OWNER, "answer": "One-off install"})
    await h.execute_update(Msg.APPROVE, {"approver": CFO, "reason": "ok"})
    await until(h, lambda s: s.stage == Stage.CLOSE)
    deeper = [QUOTE_LINES[0], QUOTE_LINES[1].model_copy(update={"discount_percent": 50})]
    CRMS[h.id].set_line_items(h.id.split("-", 4)[-1], deeper)
    at = "2026-12-01T10:00:00+00:00"
    await signal(h, Msg.DEAL_CHANGED, fields={"amount": "102500"}, event_id="q1", occurred_at=at)
    await until(h, lambda s: s.pending_approval is not None and s.approval_round == 2)
    await h.execute_update(Msg.APPROVE, {"approver": CFO, "reason": "still ok"})
    await until(h, lambda s: s.stage == Stage.CLOSE)


REP, CORA, ROB = "rita.rep@example.com", "cora.boss@example.com", "rob.west@example.com"


async def owner_managers(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """`owner_manager` from the CRM: Sam's manager at open; the rep hands the deal to
    Rita in the CRM, and the overdue qualify stage escalates to Rita's manager."""
    await until(h, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    CRMS[h.id].update_deal(h.id.split("-", 4)[-1], {"owner_email": REP}, key="rep-owner")
    at = "2026-12-01T10:00:00+00:00"
    await signal(h, Msg.DEAL_CHANGED, fields={"owner_email": REP}, event_id="m1", occurred_at=at)
    await until(h, lambda s: any(ROB in e.detail for e in s.history))
    await skip(env, h, timedelta(days=2, hours=1))
    await until(h, lambda s: s.sla_state == "escalated")


LEGAL = "lee.legal@example.com"


async def rep_edits(h: WorkflowHandle, at: str, event_id: str, **fields: str) -> None:  # type: ignore[type-arg]
    """A rep edits the deal in the scenario's CRM; the change arrives as `deal_changed`."""
    CRMS[h.id].update_deal(h.id.split("-", 4)[-1], dict(fields), key=f"rep-{event_id}")
    await signal(h, Msg.DEAL_CHANGED, fields=fields, event_id=event_id, occurred_at=at)


async def stage_moved_by_hand(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """The rep moves the CRM stage ahead of the process: to closed won before the
    evidence (a `stage_jump` exception for the manager), then to negotiation once the
    qualification evidence is in while legal review holds the stage (accepted)."""
    await until(h, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    await rep_edits(h, "2026-12-01T10:00:00+00:00", "j1", crm_stage="closed_won")
    await until(h, lambda s: any(e.kind == "stage_jump" for e in s.exceptions))
    await signal(h, Msg.RESOLVE_EXCEPTION, kind="stage_jump", by=MANAGER, note="set back")
    await rep_edits(h, "2026-12-01T10:01:00+00:00", "j2", crm_stage="new")
    await signal(h, Msg.RAISE_EXCEPTION, kind="legal_review", by=OWNER, note="DPA redlines")
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: len(s.evidence) == len(QUALIFY_EVIDENCE))
    await rep_edits(h, "2026-12-01T10:02:00+00:00", "j3", crm_stage="negotiation")
    await until(h, lambda s: any("its evidence is in" in e.detail for e in s.history))
    await signal(h, Msg.RESOLVE_EXCEPTION, kind="legal_review", by=LEGAL, note="agreed")
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def reopened(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Closed lost by hand, then moved back to an open stage: a new run of the same
    workflow starts, linked to the lost one (this history is the new run's)."""
    await give_evidence(h, *QUALIFY_EVIDENCE[:2])
    await rep_edits(h, "2026-12-01T10:00:00+00:00", "o1", crm_stage="closed_lost")
    await until(h, lambda s: s.done and s.outcome == "lost")
    deal_id = h.id.split("-", 4)[-1]
    CRMS[h.id].update_deal(deal_id, {"crm_stage": "new"}, key="rep-o2")
    # started as `handoffs.reopen` starts it (whose describe call the time-skipping
    # server cannot answer: it returns search attributes the client cannot decode)
    lost = registry.Carried(from_workflow_id=f"{h.id}/{await current_run_id(env.client, h.id)}")
    lead_to_cash = registry.get(names.LEAD_TO_CASH)
    await env.client.start_workflow(
        lead_to_cash.workflow_type,
        lead_to_cash.start_input("memory", deal_id, default_policy(), lost),
        id=h.id,
        task_queue=QUEUES[h.id],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    await until(h, lambda s: not s.done and any("re-opened" in e.detail for e in s.history))
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.stage == Stage.CLOSE)


async def stale_deliveries(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """Out of order and repeated: an owner change, then an older owner value and the
    same event again (both dropped); at the sales → ops contract a late site_notes the
    CRM no longer holds (read back, still missing), then the real value."""
    await until(h, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
    await rep_edits(h, "2026-12-01T10:05:00+00:00", "s1", owner_email=REP)
    await until(h, lambda s: s.owner == [REP])
    at = "2026-12-01T10:00:00+00:00"
    await signal(h, Msg.DEAL_CHANGED, fields={"owner_email": OWNER}, event_id="s0", occurred_at=at)
    await signal(h, Msg.DEAL_CHANGED, fields={"owner_email": OWNER}, event_id="s1")
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.stage == Stage.CLOSE and s.owner == [REP])
    await give_evidence(h, "contract_signed")
    await until(h, lambda s: s.missing_fields == ["site_notes"])
    at = "2026-12-01T10:20:00+00:00"
    late = {"site_notes": "Dock 4"}  # what the CRM held for a moment; empty again
    await signal(h, Msg.DEAL_CHANGED, fields=late, event_id="s2", occurred_at=at)
    await until(h, lambda s: any("empty in the CRM" in e.detail for e in s.history))
    await rep_edits(h, "2026-12-01T10:30:00+00:00", "s3", site_notes="Dock 9")
    await until(h, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)


async def feed_repeats_terms(env: WorkflowEnvironment, h: WorkflowHandle) -> None:  # type: ignore[type-arg]
    """The owner moves the terms to 20% with `update_terms`; the Salesforce feed then
    delivers a rep's site-notes edit with every mapped field (the CRM's old 30%: held,
    so the terms stay), then a discount the rep really moved to 35% (new terms)."""
    await give_evidence(h, *QUALIFY_EVIDENCE)
    await until(h, lambda s: s.pending_approval is not None)
    await signal(h, Msg.UPDATE_TERMS, by=OWNER, discount_percent=20)
    await until(h, lambda s: s.terms.discount_percent == 20)
    held = {"amount": "100000", "discount_percent": "30", "crm_stage": "new"}
    await rep_edits(h, "2026-12-01T10:00:00+00:00", "f1", **held, site_notes="Dock 9")
    await rep_edits(h, "2026-12-01T10:01:00+00:00", "f2", **{**held, "discount_percent": "35"})
    await until(h, lambda s: s.terms.discount_percent == 35)


#: The memory CRM of each recorded handoff (a scenario may edit it as a rep would).
CRMS: dict[str, MemoryConnector] = {}
#: The task queue of each recorded handoff.
QUEUES: dict[str, str] = {}
#: Quote lines a scenario's deal has when its handoff opens.
LINES = {"quote_desk": QUOTE_LINES}
#: Who manages whom in the CRM a scenario's deal lives in (`User.ManagerId`).
MANAGERS = {"owner_managers": {OWNER: CORA, REP: ROB}}
#: Deal fields a scenario's deal has in the CRM when its handoff opens.
FIELDS = {
    "stale_deliveries": {"site_notes": ""},
    "parked_from_crm": dict.fromkeys(QUALIFY_EVIDENCE, "true"),  # as the bench seeds them
}

SCENARIOS: dict[str, tuple[float, Scenario]] = {
    "happy_path": (30, happy_path),
    "rejected_then_new_terms": (20, rejected_then_new_terms),
    "exception_and_escalation": (5, exception_and_escalation),
    "approval_parked": (20, approval_parked),
    "terms_changed_mid_round": (30, terms_changed_mid_round),
    "delegated_and_recalled": (20, delegated_and_recalled),
    "crm_changes": (12, crm_changes),
    "refusals_recorded": (20, refusals_recorded),
    "business_calendar": (20, business_calendar),
    "people_moves": (30, people_moves),
    "policy_moved": (30, policy_moved),
    "quote_desk": (0, quote_desk),
    "owner_managers": (0, owner_managers),
    "stage_moved_by_hand": (0, stage_moved_by_hand),
    "reopened": (0, reopened),
    "stale_deliveries": (0, stale_deliveries),
    "feed_repeats_terms": (30, feed_repeats_terms),
    "parked_from_crm": (20, parked_from_crm),
}


def without_local_paths(text: str) -> str:
    """A history's stack traces name files: keep them relative, never this machine's."""
    for root, short in (
        (f"{sys.prefix}/lib/python3.11/site-packages/", "site-packages/"),
        (f"{Path(__file__).parents[2]}/", ""),
        (f"{sys.base_prefix}/lib/python3.11/", "python3.11/"),
    ):
        text = text.replace(root, short)
    return text


async def record(client: Client, env: WorkflowEnvironment, only: list[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    for name, (discount, scenario) in SCENARIOS.items():
        if only and name not in only:
            continue
        deal = make_deal(f"{GENERATION}-{name}", discount=discount, **FIELDS.get(name, {}))
        tq = f"tq-{uuid.uuid4()}"
        crm = MemoryConnector([deal])
        crm.set_line_items(deal.id, LINES.get(name, []))
        crm.managers = dict(MANAGERS.get(name, {}))
        policy = POLICIES[name]() if name in POLICIES else None
        async with handoff_worker(client, tq, crm):
            handle = await start(client, tq, deal.id, policy=policy)
            CRMS[handle.id], QUEUES[handle.id] = crm, tq
            await scenario(env, handle)
            status = await until(handle, lambda s: True)
            ids = [handle.id] + [
                names.discount_approval_id(handle.id, r)
                for r in range(1, status.approval_round + 1)
            ]
            written = 0
            for wf_id in ids:  # the file name is the workflow id, which replay needs
                try:
                    history = await client.get_workflow_handle(wf_id).fetch_history()
                except RPCError:  # no such child: rounds run inside the workflow
                    continue
                (HISTORIES / f"{wf_id}.json").write_text(without_local_paths(history.to_json()))
                written += 1
        print(f"recorded {name} ({written} histories)")


async def main(only: list[str]) -> None:
    if unknown := set(only) - set(SCENARIOS):
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=shutil.which("temporal-test-server")
        or str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    from worker.client.temporal import ensure_search_attributes

    async with env:
        await ensure_search_attributes(env.client, "default")
        await record(env.client, env, only)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

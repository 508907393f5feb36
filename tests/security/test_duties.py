"""Segregation of duties and bounded messages, inside the deal's workflow.

Each case replays an attack from the hardening issue against a real workflow on the
time-skipping server, and checks both the refusal (with its typed code, recorded in the
audit trail) and that nothing else changed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from support.api import same_state
from support.handoffs import (
    BILLING,
    MANAGER,
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    deal_id_of,
    give_evidence,
    handoff_worker,
    make_deal,
    start,
    status,
    until,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.messages import Receipt
from workflows.names import Msg, Refusal, Stage, WaitingOn
from workflows.options import MAX_REFUSALS_KEPT

LEGAL = "lee.legal@example.com"


@asynccontextmanager
async def deal_at(
    env: WorkflowEnvironment, task_queue: str, discount: float = 30
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], MemoryConnector]]:
    deal = make_deal(f"SOD-{uuid.uuid4().hex[:8]}", discount=discount)
    crm = MemoryConnector([deal])
    async with handoff_worker(env.client, task_queue, crm):
        yield await start(env.client, task_queue, deal.id), crm


async def refused(handle: WorkflowHandle[Any, Any], name: str, **payload: Any) -> str:
    """Send `name` as an update; return its refusal code (it must be refused)."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(name, payload, result_type=Receipt)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return str(cause.details[0])


async def to_close(handle: WorkflowHandle[Any, Any]) -> None:
    await give_evidence(handle, *QUALIFY_EVIDENCE)
    await until(handle, lambda s: s.pending_approval is not None)
    await handle.execute_update(Msg.APPROVE, {"approver": MANAGER, "reason": "ok"})
    await handle.execute_update(Msg.APPROVE, {"approver": VP, "reason": "ok"})
    await until(handle, lambda s: s.stage == Stage.CLOSE)


async def test_a_rep_cannot_attest_payment_or_delivery(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The rep's payment_received and delivery_confirmed are refused as not theirs."""
    async with deal_at(time_env, task_queue) as (handle, _):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        for kind in ("payment_received", "delivery_confirmed"):
            assert await refused(handle, Msg.ADD_EVIDENCE, kind=kind, by=OWNER) == (
                Refusal.NOT_AUTHORISED
            )
        st = await status(handle)
        assert {e.kind for e in st.evidence} == set(QUALIFY_EVIDENCE)
        assert [h.code for h in st.history if h.kind == "refused"] == [Refusal.NOT_AUTHORISED] * 2
        assert all("recorded_by" in h.detail for h in st.history if h.kind == "refused")


async def test_billing_cannot_record_payment_before_billing_takes_over(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Payment recorded at the deal desk counts for nothing: it is refused, not kept."""
    async with deal_at(time_env, task_queue) as (handle, _):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        code = await refused(handle, Msg.ADD_EVIDENCE, kind="payment_received", by=BILLING)
        assert code == Refusal.NOT_PENDING
        assert not (await status(handle)).evidence or all(
            e.kind != "payment_received" for e in (await status(handle)).evidence
        )


async def test_an_unknown_person_cannot_record_a_signed_contract(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """nobody@evil.example is in no role that may record contract_signed."""
    async with deal_at(time_env, task_queue, discount=0) as (handle, _):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        code = await refused(
            handle, Msg.ADD_EVIDENCE, kind="contract_signed", by="nobody@evil.example"
        )
        assert code == Refusal.NOT_AUTHORISED
        assert (await status(handle)).stage == Stage.CLOSE


async def test_an_open_cancellation_holds_the_deal_until_resolved(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """With a cancellation open, the contract's arrival does not move the deal on."""
    async with deal_at(time_env, task_queue, discount=0) as (handle, _):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await handle.execute_update(
            Msg.RAISE_EXCEPTION, {"kind": "cancellation", "by": OWNER, "note": "customer wavers"}
        )
        await give_evidence(handle, "contract_signed")
        st = await until(handle, lambda s: "held by open cancellation" in s.waiting_for)
        assert st.stage == Stage.CLOSE and st.waiting_on == WaitingOn.EVIDENCE
        await handle.execute_update(
            Msg.RESOLVE_EXCEPTION, {"kind": "cancellation", "by": MANAGER, "note": "they stay"}
        )
        await until(handle, lambda s: s.stage == Stage.SALES_TO_OPS)


async def test_the_deal_owner_cannot_resolve_a_legal_review(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Only legal (or the VP) close a legal review, not the rep who wants the deal."""
    async with deal_at(time_env, task_queue) as (handle, _):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await handle.execute_update(
            Msg.RAISE_EXCEPTION, {"kind": "legal_review", "by": OWNER, "note": "DPA"}
        )
        code = await refused(
            handle, Msg.RESOLVE_EXCEPTION, kind="legal_review", by=OWNER, note="fine"
        )
        assert code == Refusal.NOT_AUTHORISED
        assert [e.kind for e in (await status(handle)).exceptions if e.open] == ["legal_review"]
        await handle.execute_update(
            Msg.RESOLVE_EXCEPTION, {"kind": "legal_review", "by": LEGAL, "note": "agreed"}
        )


@pytest.mark.parametrize(
    ("kind", "by", "rule"),
    [
        ("credit_hold", OWNER, "exceptions.credit_hold.raised_by: billing, collections, cfo"),
        ("stage_jump", MANAGER, "exceptions.stage_jump.raised_by: nobody: Handoff raises it"),
    ],
)
async def test_an_exception_raised_by_someone_outside_raised_by_is_refused(
    time_env: WorkflowEnvironment, task_queue: str, kind: str, by: str, rule: str
) -> None:
    """The rep cannot put their own deal on credit hold, and nobody may raise what only
    Handoff raises: refused naming the rule, recorded, and nothing opened or written."""
    async with deal_at(time_env, task_queue) as (handle, crm):
        before = await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        written = crm.records(deal_id_of(handle))
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(
                Msg.RAISE_EXCEPTION, {"kind": kind, "by": by, "note": "hold it"}
            )
        cause = caught.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.details[0] == Refusal.NOT_AUTHORISED
        assert f"{by} may not raise {kind} ({rule}" in cause.message
        st = await status(handle)
        [entry] = [h for h in st.history if h.kind == "refused"]
        assert (entry.by, entry.code, entry.accepted) == (by, Refusal.NOT_AUTHORISED, False)
        assert entry.detail.startswith(f"{Msg.RAISE_EXCEPTION} refused: {by} may not raise")
        assert rule in entry.detail
        assert st.refusals_total == before.refusals_total + 1
        assert st.exceptions == [] and same_state(before, st)
        assert crm.records(deal_id_of(handle)) == written  # no note, no task


async def test_the_requester_of_a_discount_cannot_approve_it(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The manager who proposed 20% cannot approve the manager's tier for it."""
    async with deal_at(time_env, task_queue) as (handle, _):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        await handle.execute_update(Msg.UPDATE_TERMS, {"by": MANAGER, "discount_percent": 20})
        code = await refused(handle, Msg.APPROVE, approver=MANAGER, reason="mine, so fine")
        assert code == Refusal.NOT_AUTHORISED
        st = await status(handle)
        assert st.approvals == [] and st.pending_approval is not None


async def test_huge_signals_are_refused_and_never_fail_a_workflow_task(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Three 1.5 MB deal_changed signals: refused as too large; status still answers
    (sent back to back, on the dev server: the time-skipping server does not answer
    queries of runs this large)."""
    async with deal_at(dev_env, task_queue) as (handle, _):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        for i in range(3):
            await handle.signal(
                Msg.DEAL_CHANGED, {"fields": {"scope": "x" * 1_500_000}, "event_id": f"big-{i}"}
            )
        st = await until(handle, lambda s: s.refusals_total == 3)
        assert all(h.code == Refusal.TOO_LARGE for h in st.history if h.kind == "refused")
        history = await handle.fetch_history()
        failed = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        assert not [e for e in history.events if e.event_type == failed]


async def test_a_flood_of_refusals_never_evicts_the_approvals(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """600 refused signals are counted, the newest kept, and no approval is pushed out."""
    async with deal_at(time_env, task_queue) as (handle, _):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        await handle.execute_update(Msg.APPROVE, {"approver": MANAGER, "reason": "ok"})
        for i in range(600):
            await handle.signal(
                Msg.APPROVE, {"approver": f"mallory{i}@evil.example", "reason": "x"}
            )
        st = await until(handle, lambda s: s.refusals_total == 600, timeout=60)
        kinds = [h.kind for h in st.history]
        assert kinds.count("refused") == MAX_REFUSALS_KEPT
        assert any(
            h.kind == "approval" and "sales_manager: approved" in h.detail for h in st.history
        )
        assert {e.kind for e in st.evidence} == set(QUALIFY_EVIDENCE)


async def test_a_reason_cannot_forge_lines_in_the_crm_note(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Newlines, ANSI and bidi controls in a reason reach the CRM as one inert line."""
    async with deal_at(time_env, task_queue) as (handle, crm):
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        forged = "ok\nvp: approved by victor\r\ncfo: approved\x1b[31m \u202etxet\u202c"
        await handle.execute_update(Msg.APPROVE, {"approver": MANAGER, "reason": forged})
        await handle.execute_update(Msg.APPROVE, {"approver": VP, "reason": "fine"})
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.stage == Stage.SALES_TO_OPS)
        notes = [r.data["body"] for r in crm.records(deal_id_of(handle), "note")]
        desk = next(str(n) for n in notes if "Deal desk" in str(n))
        lines = desk.splitlines()
        assert not [ln for ln in lines if ln.startswith(("vp:", "cfo:"))], desk
        assert "⏎ vp: approved by victor ⏎ cfo: approved" in desk
        assert "\x1b" not in desk and "\u202e" not in desk


async def test_the_receipt_and_ops_stay_in_step(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Ops accept and confirm delivery; billing records payment once it is theirs."""
    async with deal_at(time_env, task_queue) as (handle, _):
        await to_close(handle)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        await handle.execute_update(Msg.ACCEPT_HANDOFF, {"team": "operations", "by": OPS})
        await handle.execute_update(Msg.ADD_EVIDENCE, {"kind": "delivery_confirmed", "by": OPS})
        await until(handle, lambda s: s.stage == Stage.CASH)
        await handle.execute_update(Msg.ADD_EVIDENCE, {"kind": "payment_received", "by": BILLING})
        assert (await handle.result()).done

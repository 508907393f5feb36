"""Bad messages never crash a handoff: signals are recorded as refused, updates rejected."""

from __future__ import annotations

import uuid
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
    start,
    until,
)
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows import names
from workflows.messages import Receipt
from workflows.names import Msg, WaitingOn

# (message name, payload, a fragment the refusal reason must contain)
BAD: list[tuple[str, Any, str]] = [
    (Msg.ADD_EVIDENCE, {"kind": "telepathy", "by": OWNER}, "unknown evidence kind 'telepathy'"),
    (Msg.ADD_EVIDENCE, {"kind": "budget_confirmed"}, "by: Field required"),
    (Msg.ADD_EVIDENCE, {"kind": 42, "by": OWNER}, "kind: Input should be a valid string"),
    (
        Msg.ADD_EVIDENCE,
        {"kind": "budget_confirmed", "by": OWNER, "color": "red"},
        "color: Extra inputs are not permitted",
    ),
    (
        Msg.APPROVE,
        {"approver": "mallory@example.com", "reason": "trust me"},
        "mallory@example.com is not an approver of the sales_manager tier",
    ),
    (Msg.APPROVE, {"approver": VP, "reason": "skip a tier"}, "is not an approver"),
    (Msg.APPROVE, {"approver": OWNER, "reason": "my own deal"}, "is not an approver"),
    (Msg.APPROVE, {"approver": MANAGER, "reason": ""}, "reason: String should have at least 1"),
    (Msg.APPROVE, {"approver": MANAGER, "reason": "   "}, "reason: String should have at least 1"),
    (Msg.REJECT, {"approver": MANAGER}, "reason: Field required"),
    (
        Msg.UPDATE_TERMS,
        {"by": OWNER, "discount_percent": -5},
        "discount_percent: Input should be greater than or equal to 0",
    ),
    (
        Msg.UPDATE_TERMS,
        {"by": OWNER, "discount_percent": 250},
        "discount_percent: Input should be less than or equal to 100",
    ),
    (
        Msg.UPDATE_TERMS,
        {"by": OWNER, "discount_percent": "lots"},
        "discount_percent: Input should be a valid number",
    ),
    (Msg.UPDATE_TERMS, {"by": "mallory@example.com", "discount_percent": 5}, "may not change"),
    (
        Msg.RAISE_EXCEPTION,
        {"kind": "alien_invasion", "by": OWNER, "note": "!"},
        "unknown exception kind 'alien_invasion'",
    ),
    (
        Msg.RESOLVE_EXCEPTION,
        {"kind": "legal_review", "by": OWNER, "note": "done"},
        "no open 'legal_review' exception",
    ),
    (
        Msg.ACCEPT_HANDOFF,
        {"team": "operations", "by": "olga.ops@example.com"},
        "no handoff is waiting for acceptance",
    ),
    (Msg.RECALL, {"by": VP, "reason": "not mine"}, "only the deal owner"),
    ("approve_everything", {"approver": MANAGER}, "unknown message"),
    (Msg.APPROVE, "yes", "expected a JSON object"),
    (Msg.APPROVE, ["a", "b"], "expected a JSON object"),
]


async def test_every_bad_signal_is_recorded_as_refused(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Each bad signal lands in status.history with its reason; the handoff carries on."""
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}")
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.pending_approval is not None)
        for name, payload, _ in BAD:
            await handle.signal(name, payload)
        st = await until(handle, lambda s: sum(not h.accepted for h in s.history) == len(BAD))
        refusals = [h.detail for h in st.history if not h.accepted]
        for (name, _, reason), refusal in zip(BAD, refusals, strict=True):
            assert refusal.startswith(f"{name} refused:"), refusal
            assert reason in refusal, (reason, refusal)
        assert st.waiting_on == WaitingOn.DISCOUNT_APPROVAL and st.owner == [MANAGER]
        assert st.approvals == [] and len(st.evidence) == 4
        assert st.terms.discount_percent == 30
        claimed = {h.by for h in st.history if not h.accepted}
        assert "mallory@example.com" in claimed


@pytest.mark.parametrize(("name", "payload", "reason"), BAD[:14])
async def test_bad_update_is_rejected_with_the_reason(
    time_env: WorkflowEnvironment, task_queue: str, name: str, payload: Any, reason: str
) -> None:
    """An update tells the caller why at once, with a typed code, and changes nothing but
    the audit trail, which records the refusal with who sent it."""
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}")
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        before = await until(handle, lambda s: s.pending_approval is not None)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(name, payload, result_type=Receipt)
        cause = info.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == names.REFUSED
        assert reason in cause.message
        after = await until(handle, lambda s: True)
        refused = [h for h in after.history if h not in before.history]
        assert [(h.kind, h.accepted, h.code) for h in refused] == [
            ("refused", False, cause.details[0])
        ]
        assert reason in refused[0].detail and after.refusals_total == before.refusals_total + 1
        assert after.terms == before.terms and after.evidence == before.evidence
        assert after.approvals == before.approvals and after.stage == before.stage

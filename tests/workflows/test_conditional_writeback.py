"""The workflow carries what a conditional CRM write needs from one write-back to the next:
the deal's last-modified time from the previous receipt and the CRM ids of the tasks it
opened; a person's stage change clears the time, so the next write reads and compares.

The CRM is the memory connector, stamping each receipt as Salesforce's does."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from support.handoffs import (
    QUALIFY_EVIDENCE,
    give_evidence,
    handoff_worker,
    make_deal,
    start,
    until,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors.base import Deal, WriteBack, WriteReceipt
from connectors.memory import MemoryConnector
from workflows.names import Msg, Stage, WaitingOn

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class StampingCrm(MemoryConnector):
    """A memory CRM whose receipts carry a last-modified time (one second per write),
    as Salesforce's do; it keeps every write-back it was sent with its receipt."""

    def __init__(self, deals: list[Deal]) -> None:
        super().__init__(deals)
        self.sent: list[tuple[WriteBack, WriteReceipt]] = []
        self._stamps = threading.Lock()

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        receipt = super().write_back(batch)
        with self._stamps:
            stamp = T0 + timedelta(seconds=len(self.sent) + 1)
            receipt = receipt.model_copy(
                update={"modified_at": None if receipt.conflicts else stamp}
            )
            self.sent.append((batch, receipt))
        return receipt


@asynccontextmanager
async def handoff(
    env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], StampingCrm, Deal]]:
    deal = make_deal(f"CW-{uuid.uuid4().hex[:8]}", discount=0)
    crm = StampingCrm([deal])
    async with handoff_worker(env.client, task_queue, crm):
        yield await start(env.client, task_queue, deal.id), crm, deal


async def test_each_write_back_carries_the_previous_receipts_time_and_task_ids(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """After the first write, each write-back names the time the previous receipt gave,
    and the CRM id of every task it completes (from the receipt that opened it)."""
    async with handoff(time_env, task_queue) as (handle, crm, _deal):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.stage == Stage.SALES_TO_OPS and len(crm.sent) >= 3)
        sent = list(crm.sent)
        assert sent[0][0].modified_at is None
        opened: dict[str, str] = {}
        for (before, receipt), (after, _) in itertools.pairwise(sent):
            assert after.modified_at == receipt.modified_at
            opened |= dict(zip([t.key for t in before.tasks], receipt.task_ids, strict=True))
            assert after.complete_tasks, "a wait ended, its task is completed"
            assert after.open_task_ids == {k: opened[k] for k in after.complete_tasks}


async def test_a_stage_moved_by_hand_makes_the_next_write_read_and_compare(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A rep's stage change reaches the workflow: the next write-back carries no known
    time (the CRM no longer holds what Handoff saw), so the CRM compares first."""
    async with handoff(time_env, task_queue) as (handle, crm, deal):
        await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
        written = len(crm.sent)
        assert crm.sent[-1][1].modified_at is not None
        crm.update_deal(deal.id, {"crm_stage": "qualified"}, key="rep-stage")
        await handle.signal(
            Msg.DEAL_CHANGED,
            {
                "fields": {"crm_stage": "qualified"},
                "event_id": f"evt-{uuid.uuid4()}",
                "occurred_at": T0.isoformat(),
                "changed_by": "rita.rep@example.com",
            },
        )
        await until(handle, lambda s: any("by hand" in h.detail for h in s.history))
        await give_evidence(handle, *QUALIFY_EVIDENCE)
        await until(handle, lambda s: len(crm.sent) > written)
        assert crm.sent[written][0].modified_at is None

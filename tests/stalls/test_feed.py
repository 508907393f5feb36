"""The workflows feed the store through their CRM write-backs, with no workflow change:
a real run on the time-skipping server, its events and figures read back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from support.handoffs import (
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    RecordingNotifier,
    give_evidence,
    make_deal,
    skip,
    start,
    terminate_started,
    tolerant_of_load,
    until,
)
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from worker.processes.worker import build_worker
from worker.stalls.figures import Filters, compute
from worker.stalls.store import StallStore
from workflows.names import Stage, WaitingOn


async def test_a_run_records_its_stages_and_reminder(
    time_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Qualify (reminded after five days), then close, then sales → ops: each stage once,
    the reminder under qualify, and five days and more spent in qualify."""
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=5)
    crm = MemoryConnector([deal])
    store = StallStore(f"sqlite:///{tmp_path / 'stalls.sqlite3'}")
    worker = tolerant_of_load(
        build_worker(
            time_env.client,
            task_queue=task_queue,
            connector=crm,
            notifier=RecordingNotifier(),
            stage_events=store,
        )
    )
    async with worker:
        try:
            handle = await start(time_env.client, task_queue, deal.id)
            await until(handle, lambda s: s.waiting_on == WaitingOn.EVIDENCE)
            await skip(time_env, handle, timedelta(days=5, hours=1))
            await until(handle, lambda s: s.sla_state == "due_soon")
            await give_evidence(handle, *QUALIFY_EVIDENCE)
            await until(handle, lambda s: s.stage == Stage.CLOSE)
            await give_evidence(handle, "contract_signed")
            await until(handle, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        finally:
            await terminate_started(time_env.client, task_queue)
    events = store.read()
    assert {e.workflow_id for e in events} == {handle.id}
    assert {(e.handoff_type, e.crm, e.deal_id) for e in events} == {
        ("lead-to-cash", "memory", deal.id)
    }
    stages = [e.stage for e in events if e.kind == "wait"]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == [
        "qualify",
        "close",
        "sales_to_ops",
    ]
    [reminder] = [e for e in events if e.kind == "reminder"]
    assert (reminder.stage, reminder.owners) == ("qualify", [OWNER])
    assert [e.owners for e in events if e.stage == "sales_to_ops"][-1] == [OPS]
    fig = compute(events, Filters(), max(e.at for e in events) + timedelta(hours=1))
    [qualify] = [t for t in fig.time_in_stage if t.week is None and t.stage == "qualify"]
    assert qualify.count == 1 and qualify.p50_s >= timedelta(days=5).total_seconds()
    assert [(a.stage, a.open) for a in fig.aging] == [("sales_to_ops", 1)]
    assert [(n.stage, n.reminders, n.escalations) for n in fig.nudges] == [("qualify", 1, 0)]
    store.close()

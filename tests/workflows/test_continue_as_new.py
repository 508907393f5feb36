"""A long-lived handoff continues as new and keeps everything it knew."""

from __future__ import annotations

import asyncio
import uuid

from support.handoffs import (
    OWNER,
    QUALIFY_EVIDENCE,
    current_run_id,
    first_run_ids,
    give_evidence,
    handoff_worker,
    make_deal,
    polls,
    signal,
    start,
    until,
)
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.names import Msg, Stage


async def test_large_history_continues_as_new_with_state_intact(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Past the event budget the run continues as new; evidence and audit trail survive."""
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=5)
    crm = MemoryConnector([deal])
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await start(time_env.client, task_queue, deal.id, max_history_events=60)
        await give_evidence(handle, *QUALIFY_EVIDENCE[:2])
        for i in range(40):
            await signal(handle, Msg.ADD_EVIDENCE, kind=f"noise-{i}", by=OWNER)
        await give_evidence(handle, *QUALIFY_EVIDENCE[2:])
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        client = time_env.client
        first_run = first_run_ids[handle.id]
        async for _ in polls(every=0.1):  # the closing wait is where the budget check fires
            if await current_run_id(client, handle.id) != first_run:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the handoff never continued as new")
        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert [e.kind for e in st.evidence] == list(QUALIFY_EVIDENCE)
        assert sum(not h.accepted for h in st.history) == 40
        latest = await client.get_workflow_handle(handle.id).fetch_history()
        started = latest.events[0].workflow_execution_started_event_attributes
        assert started.first_execution_run_id == first_run  # the same chain of runs...
        assert len(latest.events) < 60  # ...and the new run is small again
    writes = [r for r in crm.records(deal.id, "note") if "Qualified on evidence" in str(r.data)]
    assert len(writes) == 1

"""`status` of a completed handoff whose history the worker cannot replay answers with the
run's result (its final status); a running one still reports the failure."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import workflow
from temporalio.client import WorkflowQueryFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from worker.client.handoffs import status_of
    from workflows.messages import DealStatus
    from workflows.names import QUERY_STATUS, WaitingOn


def final(done: bool) -> DealStatus:
    return DealStatus(
        workflow_id="probe",
        crm="memory",
        deal_id="d-1",
        stage="done" if done else "qualify",
        waiting_on=WaitingOn.NOTHING,
        policy_version="p",
        done=done,
    )


@workflow.defn(name="StatusProbe")
class StatusProbe:
    """Ends with a status, or waits for ever; its status query always fails, as a query
    does when today's code cannot replay the run's history."""

    @workflow.run
    async def run(self, finish: bool) -> DealStatus:
        if not finish:
            await workflow.wait_condition(lambda: False)
        return final(done=True)

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> DealStatus:
        raise RuntimeError("cannot replay this history")


async def test_a_completed_run_answers_with_its_result(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    async with Worker(client, task_queue=task_queue, workflows=[StatusProbe]):
        handle = await client.start_workflow(
            StatusProbe.run, True, id=f"probe-done-{task_queue}", task_queue=task_queue
        )
        await handle.result()
        st = await status_of(client, handle.id)
        assert (st.done, st.stage, st.deal_id) == (True, "done", "d-1")


async def test_a_running_run_still_reports_the_failed_query(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    async with Worker(client, task_queue=task_queue, workflows=[StatusProbe]):
        handle = await client.start_workflow(
            StatusProbe.run, False, id=f"probe-open-{task_queue}", task_queue=task_queue
        )
        try:
            with pytest.raises(WorkflowQueryFailedError, match="cannot replay"):
                await status_of(client, handle.id)
        finally:
            await handle.terminate()
            await asyncio.sleep(0)


async def test_an_unanswered_status_query_names_the_run(
    dev_env: WorkflowEnvironment, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.client import handoffs

    monkeypatch.setattr(handoffs, "QUERY_TIMEOUT_S", 0.5)
    client = dev_env.client
    handle = await client.start_workflow(  # no worker polls this queue
        StatusProbe.run, False, id=f"probe-unanswered-{task_queue}", task_queue=task_queue
    )
    try:
        with pytest.raises(TimeoutError, match=f"status query of {handle.id} in 0.5 s"):
            await status_of(client, handle.id)
    finally:
        await handle.terminate()

"""The worker's sandbox compiles the code it runs on each call once, and is still the
sandbox: a workflow that reads the clock fails its task, as under the SDK's runner."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from support.clock_workflow import ReadsTheClock
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import (
    RestrictedWorkflowAccessError,
    SandboxedWorkflowRunner,
)

from worker.processes.runner import SandboxedRunner, compiled
from worker.processes.worker import WORKFLOWS, workflow_runner

HAPPY = Path(__file__).with_name("histories") / "lead-to-cash-memory-R4-happy_path.json"


async def test_a_replay_runs_compiled_code_again_and_matches() -> None:
    history = WorkflowHistory.from_json(HAPPY.stem, HAPPY.read_text())
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history, raise_on_replay_failure=True)
    before = compiled.cache_info()
    await replayer.replay_workflow(history, raise_on_replay_failure=True)
    after = compiled.cache_info()
    assert isinstance(workflow_runner(), SandboxedRunner)
    assert after.hits - before.hits > 100  # every activation and payload context
    assert after.misses == before.misses  # nothing compiled the second time


@pytest.mark.parametrize("runner", [SandboxedRunner, SandboxedWorkflowRunner])
async def test_the_clock_is_still_refused_in_the_sandbox(
    client: Client, runner: type[SandboxedWorkflowRunner]
) -> None:
    queue = f"sandbox-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ReadsTheClock],
        workflow_runner=runner(),
        workflow_failure_exception_types=[RestrictedWorkflowAccessError],
    ):
        handle = await client.start_workflow(
            ReadsTheClock.run, id=f"clock-{uuid.uuid4()}", task_queue=queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert "time.time" in str(failed.value.cause), failed.value.cause

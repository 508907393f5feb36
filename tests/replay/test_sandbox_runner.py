"""The worker's sandbox compiles the code it runs on each call once, answers the SDK's
per-payload context questions without entering the sandbox, gives the same answers as
the SDK's runner, and is still the sandbox: a workflow that reads the clock fails its
task, as under the SDK's runner."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clock_workflow import ReadsTheClock
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import (
    RestrictedWorkflowAccessError,
    SandboxedWorkflowRunner,
)
from temporalio.worker.workflow_sandbox import _importer as sdk_importer
from temporalio.worker.workflow_sandbox import _runner as sdk_runner

from worker.processes import runner as handoff_runner
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
    assert after.hits - before.hits >= 20  # every activation of the run
    assert after.misses == before.misses  # nothing compiled the second time


def _recording(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any], seen: list[tuple[str, Any]]
) -> None:
    """Record every context question `cls` answers (its own method, or the one it
    inherits), with the answer."""
    for name in ("get_serialization_context", "get_external_store_context"):
        answer = getattr(cls, name)

        def record(self: Any, info: Any, _answer: Any = answer, _name: str = name) -> Any:
            result = _answer(self, info)
            seen.append((f"{_name} {info}", result))
            return result

        monkeypatch.setattr(cls, name, record)


def _counting_sandbox_entries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the times anything applies the sandbox's import restrictions."""
    entries = [0]
    applied = sdk_importer.Importer.applied

    @contextlib.contextmanager
    def counted(self: Any) -> Iterator[None]:
        entries[0] += 1
        with applied(self):
            yield

    monkeypatch.setattr(sdk_importer.Importer, "applied", counted)
    return entries


async def test_contexts_match_the_sdks_and_skip_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = WorkflowHistory.from_json(HAPPY.stem, HAPPY.read_text())
    answers: dict[str, list[tuple[str, Any]]] = {"sdk": [], "handoff": []}
    entries: dict[str, int] = {}
    _recording(monkeypatch, sdk_runner._Instance, answers["sdk"])
    _recording(monkeypatch, handoff_runner._Instance, answers["handoff"])
    counted = _counting_sandbox_entries(monkeypatch)
    ours = workflow_runner()
    sdks = SandboxedWorkflowRunner(restrictions=ours.restrictions)  # the same passthrough
    for name, runner in (("sdk", sdks), ("handoff", ours)):
        replayer = Replayer(
            workflows=list(WORKFLOWS),
            data_converter=pydantic_data_converter,
            workflow_runner=runner,
        )
        before = counted[0]
        await replayer.replay_workflow(history, raise_on_replay_failure=True)
        entries[name] = counted[0] - before
    assert len(answers["sdk"]) > 100  # a context per payload of each activation
    assert answers["handoff"] == answers["sdk"]
    # The SDK's runner enters the sandbox for each answer; Handoff's only to create
    # the run and for its activations.
    assert entries["sdk"] - entries["handoff"] == len(answers["sdk"])


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

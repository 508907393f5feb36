"""Safe evolution: the renewal's heads-up task was added with `workflow.patched`.

`renewal_before_<patch>.json` was recorded by the renewal as it was before the change
(`tests/replay/record_renewal.py`). Runs like it exist in production, so today's code must
replay it unchanged, while new runs take the new path. See docs/adding-a-handoff.md.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from support.handoffs import handoff_worker, make_deal, skip, track, until
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, WorkflowReplayResult

from connectors.memory import MemoryConnector
from worker.processes.worker import workflow_runner
from workflows import names
from workflows.discount_approval import DiscountApproval
from workflows.names import WaitingOn
from workflows.policy import default_policy
from workflows.renewal import WINDOW_HEADS_UP, RenewalExpansion, RenewalInput, RenewalStage

BEFORE = Path(__file__).with_name("histories") / f"renewal_before_{WINDOW_HEADS_UP}.json"
ACCOUNT_MANAGER = "amy.am@example.com"


async def replay(path: Path) -> WorkflowReplayResult:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    return await Replayer(
        workflows=[RenewalExpansion, DiscountApproval],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    ).replay_workflow(history, raise_on_replay_failure=False)


def heads_up_tasks(crm: MemoryConnector, deal_id: str) -> list[dict[str, object]]:
    return [
        r.data
        for r in crm.records(deal_id, "task")
        if str(r.data["subject"]).startswith("Renewal window open")
    ]


def test_the_history_from_before_the_change_is_committed() -> None:
    """The old run went through the window opening, so it covers the patched code."""
    history = WorkflowHistory.from_json(BEFORE.stem, BEFORE.read_text())
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_TIMER_FIRED in kinds  # the window opened in that run
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert EventType.EVENT_TYPE_MARKER_RECORDED not in kinds  # recorded before the patch


async def test_a_run_from_before_the_change_replays_without_nondeterminism() -> None:
    """Today's RenewalExpansion replays the old history: `patched` is false there."""
    result = await replay(BEFORE)
    assert result.replay_failure is None


async def test_the_same_change_without_the_guard_breaks_the_old_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Had the heads-up been added unguarded, the old history would fail to replay."""
    monkeypatch.setattr(workflow, "patched", lambda patch_id: True)  # no guard
    result = await replay(BEFORE)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


async def test_a_new_renewal_takes_the_new_path(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A renewal started today records the patch and gives the account manager a task."""
    now = await time_env.get_current_time()
    deal = make_deal(f"R-{uuid.uuid4().hex[:8]}", discount=0)
    deal.fields["contract_end_date"] = (now + timedelta(days=95)).date().isoformat()
    crm, policy = MemoryConnector([deal]), default_policy()
    async with handoff_worker(time_env.client, task_queue, crm):
        handle = await time_env.client.start_workflow(
            RenewalExpansion.run,
            RenewalInput(
                crm="memory", deal_id=deal.id, policy=policy, policy_version=policy.version
            ),
            id=names.renewal_id("memory", deal.id),
            task_queue=task_queue,
        )
        track(task_queue, handle.id)
        await until(handle, lambda s: s.waiting_on == WaitingOn.TIME)
        assert heads_up_tasks(crm, deal.id) == []  # nothing before the window opens
        await skip(time_env, handle, timedelta(days=5, hours=1))
        await until(handle, lambda s: s.stage == RenewalStage.USAGE)
        history = await handle.fetch_history()
    [task] = heads_up_tasks(crm, deal.id)
    assert task["owner_email"] == ACCOUNT_MANAGER
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert any(WINDOW_HEADS_UP.encode() in m.SerializeToString() for m in markers)

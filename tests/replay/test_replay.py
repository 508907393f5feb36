"""Committed histories must replay on today's workflow code.

A failure here means a change to `workflows/` would break running handoffs: guard it
with `workflow.patched()` (see docs/adding-a-handoff.md), don't re-record to hide it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.processes.worker import WORKFLOWS, strict_workflow_runner, workflow_runner

HISTORIES = sorted(
    p
    for p in Path(__file__).with_name("histories").glob("*.json")
    if not p.name.endswith(".placeholder.json")
)


def test_main_scenarios_have_committed_histories() -> None:
    """Every engine generation is recorded: v1 (`R-`, approval rounds as children, as
    handoffs opened before engine v2 still run), v2 (`R2-`, rounds inline) and v2 with
    search attributes upserted on change, quotes, people and calendars (`R3-`, every
    scenario, with the CRM-truth paths: a stage moved by hand, a re-opened deal, late
    and repeated deliveries)."""
    names = {p.stem for p in HISTORIES}
    for generation in ("R", "R2"):
        for scenario in (
            "happy_path",
            "rejected_then_new_terms",
            "exception_and_escalation",
            "approval_parked",
            "terms_changed_mid_round",
        ):
            assert f"lead-to-cash-memory-{generation}-{scenario}" in names
    assert "lead-to-cash-memory-R-happy_path-approval-r1" in names
    for scenario in (
        "delegated_and_recalled",
        "crm_changes",
        "refusals_recorded",
        "business_calendar",
        "people_moves",
        "policy_moved",
        "quote_desk",
    ):
        assert f"lead-to-cash-memory-R2-{scenario}" in names
    for scenario in (
        "happy_path",
        "rejected_then_new_terms",
        "exception_and_escalation",
        "approval_parked",
        "terms_changed_mid_round",
        "delegated_and_recalled",
        "crm_changes",
        "refusals_recorded",
        "business_calendar",
        "people_moves",
        "policy_moved",
        "quote_desk",
        "owner_managers",
        "stage_moved_by_hand",
        "reopened",
        "stale_deliveries",
        "feed_repeats_terms",
    ):
        assert f"lead-to-cash-memory-R3-{scenario}" in names
    r3 = {n.removeprefix("lead-to-cash-memory-R3-") for n in names if "-R3-" in n}
    for scenario in (*r3, "parked_from_crm"):  # opened with one read (`open-at-once`)
        assert f"lead-to-cash-memory-R4-{scenario}" in names
    assert not any(n.startswith("lead-to-cash-memory-R2-") and "-approval-r" in n for n in names)


RUNNERS = {
    "worker": workflow_runner,  # the worker's own sandbox, as in production
    # `workflows/` re-imported into the sandbox: a clock, random or I/O call in the
    # workflow logic raises here, though the worker passes that logic through
    "strict": strict_workflow_runner,
}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path, runner: str) -> None:
    """Replaying a committed history raises no nondeterminism error, nor a restricted
    call in the strict sandbox."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())  # stem = workflow id
    result = await Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=RUNNERS[runner](),
    ).replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None

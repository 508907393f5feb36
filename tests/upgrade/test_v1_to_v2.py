"""Open handoffs survive the engine v2 upgrade.

A deal is opened by a worker running engine v1 (the code at `V1_COMMIT`, taken from
this repository's own history), where approval rounds are `DiscountApproval` child
workflows. While it is parked on its first round, that worker is killed and today's
worker takes over: the same child round decides, and the deal moves on to close.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from support.hubspot import create_deal, hubspot_stack
from support.processes import Stack
from temporalio.testing import WorkflowEnvironment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The last commit of engine v1: approval rounds as child workflows.
V1_COMMIT = "3008cf1b83fa79c3517e584884e8cd6ffdf0d9c1"
REPO = Path(__file__).resolve().parents[2]
OWNER, MANAGER, VP = "sam.rep@example.com", "maya.manager@example.com", "victor.vp@example.com"
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")


def v1_tree(into: Path) -> Path:
    """The v1 packages, exported from git (the test needs this repository's history)."""
    archive = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "archive",
            "--format=tar",
            V1_COMMIT,
            "workflows",
            "activities",
            "connectors",
            "worker",
        ],
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, (
        f"engine v1 ({V1_COMMIT}) is not in this checkout's history: "
        + archive.stderr.decode(errors="replace")
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def start_v1_worker(s: Stack, tree: Path) -> subprocess.Popen[bytes]:
    log = s.state_dir / "worker-v1.log"
    out = log.open("wb")
    s.logs.append(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "worker"],
        env={**s.env(), "PYTHONPATH": str(tree)},
        cwd=tree,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120  # as Stack.spawn: a loaded runner's imports are slow
    while b"worker started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the v1 worker did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


def v1_cli(s: Stack, tree: Path, *args: str) -> None:
    """The v1 `handoff` CLI (with the v1 policy model and default policy)."""
    result = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env={**s.env(), "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def describe(s: Stack, wf_id: str) -> dict[str, object]:
    out = s.temporal("workflow", "describe", "--workflow-id", wf_id, "--output", "json").stdout
    info: dict[str, object] = json.loads(out)["workflowExecutionInfo"]
    return info


def test_a_deal_parked_on_a_v1_child_round_finishes_on_the_v2_worker(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Opened and parked on v1, approved and moved to close on today's worker."""
    tree = v1_tree(tmp_path / "v1")
    with hubspot_stack(dev_env, tmp_path) as (sandbox, s, _):
        deal = create_deal(
            sandbox, "Globex upgrade", amount="40000", discount_percent="30", owner=OWNER
        )
        wf_id = f"lead-to-cash-hubspot-{deal}"

        v1 = start_v1_worker(s, tree)
        v1_cli(s, tree, "deal", "start", deal)  # opened by v1, with v1's policy
        for kind in QUALIFY:
            v1_cli(s, tree, "evidence", "add", deal, kind, "--by", OWNER, "--ref", "call notes")
        s.until(deal, lambda st: (st["pending_approval"] or {}).get("tier") == "sales_manager")
        assert describe(s, f"{wf_id}-approval-r1")["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
        v1.kill()  # the upgrade: v1 stops mid-round, v2 takes the task queue
        v1.wait(timeout=10)

        s.worker()
        s.handoff("approve", deal, "--as", MANAGER, "--reason", "Strategic logo")
        s.until(deal, lambda st: (st["pending_approval"] or {}).get("tier") == "vp")
        s.handoff("approve", deal, "--as", VP, "--reason", "Multi-year")
        st = s.until(deal, lambda st: st["stage"] == "close", timeout=60)

        assert [(a["tier"], a["decision"]) for a in st["approvals"]] == [
            ("sales_manager", "approved"),
            ("vp", "approved"),
        ]
        child = describe(s, f"{wf_id}-approval-r1")
        assert child["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
        failed = s.temporal("workflow", "show", "--workflow-id", wf_id, "--output", "json").stdout
        assert "WorkflowTaskFailed" not in failed and "WORKFLOW_TASK_FAILED" not in failed
        assert sandbox.activity(deal)["deal"]["approved_discount"] in ("30", "30.0")

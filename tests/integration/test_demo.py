"""`handoff demo` in a second terminal: it follows the running stack (CRM, Temporal,
sandbox) from the state folder and creates a fresh deal each run, so it runs twice."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.hubspot import TOKEN, running_sandbox, store_with_unique_ids
from support.processes import HANDOFF, Stack, stack
from support.salesforce import running_sandbox as running_salesforce
from support.salesforce import stack_env
from support.salesforce import store_with_unique_ids as salesforce_store_with_unique_ids
from temporalio.testing import WorkflowEnvironment

from worker.stack_file import RunningStack, write_running

pytestmark = pytest.mark.integration

#: What a stack's client settings are; the demo gets nothing else from its environment.
CLIENT_KEYS = ("TEMPORAL_ADDRESS", "HANDOFF_CRM", "HANDOFF_TASK_QUEUE", "HANDOFF_STATE_DIR")


def announce(s: Stack, base: Path) -> None:
    """Write running.json as `handoff dev` does, for the stack `s` (this process is alive)."""
    env = s.env()
    keep = {k: v for k, v in env.items() if k in CLIENT_KEYS or k in s.extra_env}
    write_running(
        base,
        RunningStack(crm=s.crm, state_dir=str(s.state_dir), pid=os.getpid(), api_url="", env=keep),
    )


def demo(base: Path) -> tuple[str, str]:
    """Run `handoff demo` as a user in a fresh terminal: no HANDOFF_/TEMPORAL_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    result = subprocess.run(
        [HANDOFF, "demo", "--state-dir", str(base)],
        env={**clean, "COLUMNS": "60"},  # narrow: nothing may wrap
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    created = re.search(r"Created deal (\S+) in the (\w+) CRM", output)
    assert created, output
    return created.group(1), output


def bare_terminal(cwd: Path, *args: str) -> tuple[str, str]:
    """Run `handoff <args>` from `cwd` with no HANDOFF_/TEMPORAL_ settings and no flag
    naming the stack; its stdout and stderr, after checking it succeeded."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    result = subprocess.run(
        [HANDOFF, *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


def run_twice(s: Stack, base: Path) -> list[dict[str, Any]]:
    s.worker()
    announce(s, base)
    first, out1 = demo(base)
    second, out2 = demo(base)
    assert first != second
    for deal, out in ((first, out1), (second, out2)):
        assert f"handoff approve {deal} --crm {s.crm} --as maya.manager@example.com" in out
    return [
        s.until(d, lambda st: st["waiting_on"] == "discount_approval", timeout=60)
        for d in (first, second)
    ]


def test_demo_runs_twice_against_the_running_hubspot_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Two demos in a row create two HubSpot deals, each waiting on the sales manager."""
    address = dev_env.client.service_client.config.target_host
    base = tmp_path / "handoff"
    with (
        running_sandbox(store_with_unique_ids(tmp_path / "hubspot.sqlite3")) as sandbox,
        stack(
            address,
            tmp_path,
            extra_env={"HANDOFF_HUBSPOT_HOST": sandbox.base, "HANDOFF_HUBSPOT_TOKEN": TOKEN},
        ) as s,
    ):
        statuses = run_twice(s, base)
    assert [st["pending_approval"]["approvers"] for st in statuses] == [
        ["maya.manager@example.com"]
    ] * 2


def test_demo_follows_a_running_salesforce_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """With Salesforce running, the demo (no --crm) creates Opportunities there, twice;
    `handoff approve` and `handoff status` from a bare terminal reach them too."""
    address = dev_env.client.service_client.config.target_host
    base = tmp_path / ".handoff"  # `handoff dev`'s default, seen from tmp_path
    with (
        running_salesforce(
            tmp_path, salesforce_store_with_unique_ids(tmp_path / "salesforce.sqlite3")
        ) as sandbox,
        stack(
            address,
            tmp_path,
            crm="salesforce",
            extra_env=stack_env(sandbox, feed=False),
        ) as s,
    ):
        statuses = run_twice(s, base)
        for st in statuses:
            opportunity = sandbox.activity(st["deal_id"])["opportunity"]
            assert opportunity["Discount_Percent__c"] == 30
            assert opportunity["AccountId"]  # the order at the billing handoff needs it
        deal = statuses[0]["deal_id"]
        approved, notice = bare_terminal(
            tmp_path, "approve", deal, "--as", "maya.manager@example.com", "--reason", "Logo"
        )
        assert "next: tier VP, asked of victor.vp@example.com" in approved, approved
        assert "Using the running dev stack: salesforce" in notice, notice
        st = json.loads(bare_terminal(tmp_path, "status", deal, "--json")[0])
        assert (st["crm"], st["pending_approval"]["approvers"]) == (
            "salesforce",
            ["victor.vp@example.com"],
        )


def test_dev_stack_says_what_it_runs_without_its_secrets(tmp_path: Path) -> None:
    """`handoff dev` writes its CRM, state folder and addresses for other terminals, but
    not the link secret or API tokens; the file goes when the stack stops."""
    from worker.devtools.dev import DevStack
    from worker.stack_file import read_running, remove_running

    dev = DevStack(state_dir=tmp_path / "salesforce", base_dir=tmp_path, crm="salesforce")
    dev.announce()
    running = read_running(tmp_path)
    assert running is not None and running.crm == "salesforce"
    assert running.env["HANDOFF_STATE_DIR"] == str(tmp_path / "salesforce")
    assert running.env["TEMPORAL_ADDRESS"] == "127.0.0.1:7233"
    assert not {"HANDOFF_LINK_SECRET", "HANDOFF_API_TOKENS"} & running.env.keys()
    assert (tmp_path / "salesforce" / "stack.json").exists()
    remove_running(tmp_path, os.getpid())
    assert read_running(tmp_path) is None

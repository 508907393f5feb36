"""The `handoff` CLI reaches every handoff type: `--type` or a workflow id in place of the
deal id, and `list`, `status` and `stuck` show each handoff's type."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api.helpers import make_settings, renewal_at_tier
from support.handoffs import MANAGER, handoff_worker, make_deal, track, until
from support.processes import run_handoff
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector

pytestmark = pytest.mark.integration


async def test_a_renewal_is_approved_with_approve_type_renewal(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """`handoff approve <deal> --type renewal` records the manager's approval on the renewal,
    prints the tier asked next, and `status --json` shows it at once."""
    address = dev_env.client.service_client.config.target_host
    async with renewal_at_tier(dev_env.client, task_queue, make_settings(tmp_path)) as (h, _, _):
        deal_id = h.id.removeprefix("renewal-memory-")
        code, text = await run_handoff(
            address, "approve", deal_id, "--type", "renewal", "--as", MANAGER,
            "--reason", "Keep the logo", HANDOFF_CRM="memory",
        )  # fmt: skip
        assert code == 0, text
        assert text.startswith("OK") and "next: tier VP, asked of victor.vp@example.com" in text
        # right after `approve` returns, `status` shows the new state (no polling)
        code, text = await run_handoff(address, "status", h.id, "--json")
        assert code == 0, text
        st = json.loads(text)
        assert [(a["tier"], a["approver"]) for a in st["approvals"]] == [("sales_manager", MANAGER)]
        assert st["pending_approval"]["tier"] == "vp"


async def test_list_status_and_stuck_show_a_renewal_by_type_or_workflow_id(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """`status <workflow id>` needs no --type; `list` and `stuck` show the renewal's type."""
    address = dev_env.client.service_client.config.target_host
    async with renewal_at_tier(dev_env.client, task_queue, make_settings(tmp_path)) as (h, _, _):
        deal_id = h.id.removeprefix("renewal-memory-")
        code, text = await run_handoff(address, "status", h.id, "--json")
        assert code == 0, text
        st = json.loads(text)
        assert (st["workflow_id"], st["workflow_type"]) == (h.id, "RenewalExpansion")
        assert st["pending_approval"]["tier"] == "sales_manager"
        code, text = await run_handoff(
            address, "status", deal_id, "--type", "renewal", "--crm", "memory"
        )
        assert code == 0 and "type        renewal" in text, text
        for _ in range(30):  # visibility lags a moment behind the workflow
            (c1, listed), (c2, only), (c3, board) = await asyncio.gather(
                run_handoff(address, "list"),
                run_handoff(
                    address, "list", "--type", "renewal", "--waiting-on", "discount_approval"
                ),
                run_handoff(address, "stuck"),
            )
            if h.id in listed and h.id in only and f"renewal memory/{deal_id}" in board:
                break
            await asyncio.sleep(0.3)
        assert (c1, c2, c3) == (0, 0, 0)
        row = next(line for line in listed.splitlines() if h.id in line)
        assert "renewal" in row.split(h.id, 1)[1] and "discount_approval" in row
        assert h.id in only and "lead-to-cash-" not in only
        assert f"renewal memory/{deal_id}" in board


async def test_renewal_start_starts_once_and_the_renewal_is_then_reachable(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """`handoff renewal start` starts `renewal-<crm>-<deal>`; again, it is a no-op."""
    address = dev_env.client.service_client.config.target_host
    deal = make_deal(f"R-{uuid.uuid4().hex[:8]}", discount=0)
    deal.fields["contract_end_date"] = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    env = {"HANDOFF_CRM": "memory", "HANDOFF_TASK_QUEUE": task_queue}
    async with handoff_worker(dev_env.client, task_queue, MemoryConnector([deal])):
        wf_id = f"renewal-memory-{deal.id}"
        track(task_queue, wf_id)
        code, text = await run_handoff(address, "renewal", "start", deal.id, **env)
        assert code == 0 and f"Started {wf_id}" in text, text
        code, text = await run_handoff(address, "renewal", "start", deal.id, **env)
        assert code == 0 and f"Already started {wf_id}" in text, text
        st = await until(dev_env.client.get_workflow_handle(wf_id), lambda s: s.stage == "usage")
        assert st.workflow_type == "RenewalExpansion"

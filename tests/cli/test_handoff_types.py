"""The `handoff` CLI reaches every handoff type: `--type` or a workflow id in place of the
deal id, and `list`, `status` and `stuck` show each handoff's type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.api import make_settings, renewal_at_tier
from support.cli import approves_with_its_type, shows_in_status_list_and_stuck
from support.handoffs import handoff_worker, make_deal, track, until
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
        await approves_with_its_type(address, h)


async def test_list_status_and_stuck_show_a_renewal_by_type_or_workflow_id(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """`status <workflow id>` needs no --type; `list` and `stuck` show the renewal's type."""
    address = dev_env.client.service_client.config.target_host
    async with renewal_at_tier(dev_env.client, task_queue, make_settings(tmp_path)) as (h, _, _):
        await shows_in_status_list_and_stuck(address, h)


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

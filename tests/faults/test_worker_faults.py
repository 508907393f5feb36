"""Many handoffs at once while worker processes die or run side by side: every deal
reaches cash and the HubSpot sandbox holds each note, task and order exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from support.faults import (
    Driver,
    assert_hubspot_once,
    drive_all,
    hubspot_deal,
    hubspot_store,
    start_all,
    worker_logs_with,
)
from support.hubspot import TOKEN, running_sandbox
from support.processes import stack
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration

DEALS = 12
SEED = 20261123


async def test_handoffs_complete_once_through_random_worker_sigkills(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILLing the worker at seeded random moments, three times, loses and repeats nothing."""
    rng = random.Random(SEED)
    client = dev_env.client
    address = client.service_client.config.target_host
    with running_sandbox(hubspot_store(tmp_path / "hubspot.sqlite3")) as sandbox, stack(
        address, tmp_path,
        extra_env={"HANDOFF_HUBSPOT_HOST": sandbox.base, "HANDOFF_HUBSPOT_TOKEN": TOKEN},
    ) as s:  # fmt: skip
        sandbox.limits(max=2000)  # the fault here is the worker, not HubSpot's rate limit
        discounts = [rng.choice([5, 20]) for _ in range(DEALS)]
        deals = [hubspot_deal(sandbox, f"Kill {i}", d) for i, d in enumerate(discounts)]
        worker = s.worker()
        await start_all(client, "hubspot", deals, s.task_queue)
        drivers = [Driver(client, "hubspot", d) for d in deals]
        driving = asyncio.ensure_future(drive_all(drivers, within_s=150))
        kills = 0
        for _ in range(3):
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            if driving.done():
                break
            s.kill(worker)
            kills += 1
            worker = await asyncio.to_thread(s.worker)
        finals = await driving
        assert kills >= 2, "the deals finished before the worker could be killed twice"

        for deal, discount, final in zip(deals, discounts, finals, strict=True):
            assert final.done
            assert final.stage == "done"
            assert len([a for a in final.approvals if a.decision == "approved"]) == (
                1 if discount == 20 else 0
            )
            assert_hubspot_once(sandbox.activity(deal), final.workflow_id, discount == 20)


async def test_two_workers_on_one_task_queue_share_the_load_without_double_writes(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Two worker processes poll one task queue; each deal's writes still happen once."""
    client = dev_env.client
    address = client.service_client.config.target_host
    with running_sandbox(hubspot_store(tmp_path / "hubspot.sqlite3")) as sandbox, stack(
        address, tmp_path,
        extra_env={"HANDOFF_HUBSPOT_HOST": sandbox.base, "HANDOFF_HUBSPOT_TOKEN": TOKEN},
    ) as s:  # fmt: skip
        sandbox.limits(max=2000)
        deals = [hubspot_deal(sandbox, f"Pair {i}", 20 if i % 2 else 5) for i in range(DEALS)]
        s.worker()
        s.worker()
        started = time.monotonic()
        await start_all(client, "hubspot", deals, s.task_queue)
        finals = await drive_all([Driver(client, "hubspot", d) for d in deals], within_s=120)
        assert time.monotonic() - started < 120

        for i, (deal, final) in enumerate(zip(deals, finals, strict=True)):
            assert final.done
            assert_hubspot_once(sandbox.activity(deal), final.workflow_id, i % 2)
        # both processes did real work: each logged CRM write-backs
        assert worker_logs_with(tmp_path, b"writing back") == {
            "worker-0.log": True,
            "worker-1.log": True,
        }

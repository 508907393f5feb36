"""The Temporal server stops mid-flow and comes back on the same SQLite file: every
handoff carries on from where it was and writes each record once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.faults import (
    Driver,
    assert_hubspot_once,
    connect,
    drive_all,
    hubspot_deal,
    hubspot_store,
    own_server,
    start_all,
)
from support.hubspot import TOKEN, running_sandbox
from support.processes import stack

pytestmark = pytest.mark.integration

DEALS = 10


async def test_handoffs_survive_a_temporal_server_restart_on_the_same_database(
    tmp_path: Path,
) -> None:
    """SIGINT the server while deals are mid-way, restart it on t.db: all reach cash once."""
    with own_server(tmp_path) as server, running_sandbox(
        hubspot_store(tmp_path / "hubspot.sqlite3")
    ) as sandbox, stack(
        server.address, tmp_path,
        extra_env={"HANDOFF_HUBSPOT_HOST": sandbox.base, "HANDOFF_HUBSPOT_TOKEN": TOKEN},
    ) as s:  # fmt: skip
        sandbox.limits(max=2000)
        client = await connect(server.address)
        deals = [hubspot_deal(sandbox, f"Restart {i}", 20 if i % 2 else 5) for i in range(DEALS)]
        s.worker()
        await start_all(client, "hubspot", deals, s.task_queue)
        drivers = [Driver(client, "hubspot", d) for d in deals]
        driving = asyncio.ensure_future(drive_all(drivers, within_s=300))
        # wait until every deal is past qualification, then pull the server away
        for _ in range(100):
            if all(d.last is not None and d.last.stage != "qualify" for d in drivers):
                break
            await asyncio.sleep(0.2)
        mid = {d.deal_id: d.last.stage for d in drivers if d.last is not None}
        assert not driving.done(), "the deals finished before the server could be stopped"
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(2)  # the worker and the drivers now face a dead server
        await asyncio.to_thread(server.start)
        finals = await driving

        assert any(stage != "done" for stage in mid.values()), mid
        for i, (deal, final) in enumerate(zip(deals, finals, strict=True)):
            assert final.done
            assert_hubspot_once(sandbox.activity(deal), final.workflow_id, i % 2)
        assert s.procs[0].poll() is None, "the worker died while the server was away"

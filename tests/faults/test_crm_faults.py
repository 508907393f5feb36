"""The CRM misbehaves while many handoffs run: 5xx answers, 429 bursts with Retry-After,
latency, responses lost after the write, a ten-minute outage and expired Salesforce
sessions. Every handoff still reaches cash and every record is written once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from support.faults import (
    CLOSE_TASK,
    OPS,
    OWNER,
    QUALIFY,
    QUALIFY_TASK,
    Driver,
    activities_idle,
    assert_hubspot_once,
    assert_salesforce_once,
    drive_all,
    hubspot_deal,
    hubspot_store,
    pending_attempts,
    salesforce_account,
    salesforce_deal,
    start_all,
)
from support.handoffs import skip_time, tolerant_of_load
from support.hubspot import running_sandbox
from support.salesforce import auth_for, connector_for
from support.salesforce import running_sandbox as running_salesforce
from support.salesforce import store_with_unique_ids as salesforce_store
from temporalio.testing import WorkflowEnvironment

from worker.processes.worker import build_worker
from workflows.names import Msg, Stage

pytestmark = pytest.mark.integration

DEALS = 12
#: The outage test signs contracts up front, so qualify and close owe no task.
EARLY = frozenset({QUALIFY_TASK, CLOSE_TASK})


async def test_handoffs_complete_once_through_5xx_429_latency_and_lost_responses(
    dev_env: WorkflowEnvironment, tmp_path: Path, task_queue: str
) -> None:
    """A flaky, slow, rate-limiting HubSpot that loses responses delays deals, never doubles."""
    client = dev_env.client
    with running_sandbox(hubspot_store(tmp_path / "hubspot.sqlite3")) as sandbox:
        sandbox.limits(max=2000)
        deals = [hubspot_deal(sandbox, f"Flaky {i}", 20 if i % 3 == 0 else 5) for i in range(DEALS)]
        connector = sandbox.connector(max_retries=3)  # backoff sleeps recorded, not slept
        async with tolerant_of_load(
            build_worker(client, task_queue=task_queue, connector=connector)
        ):
            await start_all(client, "hubspot", deals, task_queue)
            driving = asyncio.ensure_future(
                drive_all([Driver(client, "hubspot", d) for d in deals], within_s=150)
            )
            rounds = 0
            while not driving.done() and rounds < 5:
                sandbox.faults(error_rate=0.2, latency_ms=15, burst_429=12, retry_after_s=1)
                sandbox.lose_responses(3)
                rounds += 1
                await asyncio.wait([driving], timeout=2)
            sandbox.faults()
            finals = await driving

        assert rounds >= 2, "the deals finished before the faults could bite"
        assert sandbox.sleeps, "the connector never had to back off"
        assert any(s >= 1 for s in sandbox.sleeps), "no backoff honoured Retry-After: 1"
        for i, (deal, final) in enumerate(zip(deals, finals, strict=True)):
            assert final.done
            assert_hubspot_once(sandbox.activity(deal), final.workflow_id, i % 3 == 0)


async def test_a_ten_minute_hubspot_outage_delays_handoffs_and_loses_nothing(
    time_env: WorkflowEnvironment, tmp_path: Path, task_queue: str
) -> None:
    """HubSpot down for 12 skipped minutes: writes retry, none is lost or doubled."""
    client = time_env.client
    with running_sandbox(hubspot_store(tmp_path / "hubspot.sqlite3")) as sandbox:
        sandbox.limits(max=2000)
        deals = [hubspot_deal(sandbox, f"Outage {i}") for i in range(10)]
        wf_ids = [f"lead-to-cash-hubspot-{d}" for d in deals]
        connector = sandbox.connector(max_retries=1)
        async with tolerant_of_load(
            build_worker(client, task_queue=task_queue, connector=connector)
        ):
            await start_all(client, "hubspot", deals, task_queue)
            drivers = [Driver(client, "hubspot", d) for d in deals]
            for driver in drivers:  # qualify, then sign once the deal is at close
                for kind in QUALIFY:
                    await driver.send(kind, Msg.ADD_EVIDENCE, {"kind": kind, "by": OWNER})
            for driver in drivers:
                await _until_stage(driver, Stage.CLOSE, waiting_on="evidence")
                await driver.send(
                    "contract_signed", Msg.ADD_EVIDENCE, {"kind": "contract_signed", "by": OWNER}
                )
            for driver, deal in zip(drivers, deals, strict=True):
                await _until_stage(driver, Stage.SALES_TO_OPS, waiting_on="acceptance")
                await _until_written(sandbox, deal, "handoff_owner", OPS)

            sandbox.faults(down=True)
            for driver in drivers:  # operations accept during the outage
                await driver.send("accept", Msg.ACCEPT_HANDOFF, {"team": "operations", "by": OPS})
            for _ in range(12):
                await activities_idle(client, wf_ids)
                await skip_time(time_env, timedelta(minutes=1))
            for wf_id in wf_ids:
                pending = await pending_attempts(client, wf_id)
                assert len(pending) == 1, (wf_id, pending)
                activity_type, attempt, failure = pending[0]
                assert activity_type == "crm.write_back"
                assert attempt >= 5, (wf_id, attempt)
                assert "SERVICE_UNAVAILABLE" in failure, failure
                st = await driver_status(drivers, wf_id)
                assert st.stage == Stage.DELIVERY
                assert not st.done
            assert all(not sandbox.activity(d)["orders"] for d in deals)

            sandbox.faults()
            await activities_idle(client, wf_ids)
            await skip_time(time_env, timedelta(minutes=2))  # the next retry finds HubSpot back
            finals = await drive_all(drivers, within_s=90)

        for deal, final in zip(deals, finals, strict=True):
            assert final.done
            assert_hubspot_once(sandbox.activity(deal), final.workflow_id, approvals=0, early=EARLY)


async def test_expired_salesforce_sessions_are_renewed_without_double_writes(
    dev_env: WorkflowEnvironment, tmp_path: Path, task_queue: str
) -> None:
    """Sessions revoked again and again mid-flow: the connector logs in anew, writes once."""
    client = dev_env.client
    with running_salesforce(tmp_path, salesforce_store(tmp_path / "sf.sqlite3")) as sandbox:
        account = salesforce_account(sandbox)
        deals = [salesforce_deal(sandbox, f"Session {i}", account) for i in range(10)]
        connector = connector_for(sandbox, auth_for(sandbox, "oauth_password"))
        async with tolerant_of_load(
            build_worker(client, task_queue=task_queue, connector=connector)
        ):
            await start_all(client, "salesforce", deals, task_queue)
            driving = asyncio.ensure_future(
                drive_all([Driver(client, "salesforce", d) for d in deals], within_s=150)
            )
            expiries = 0
            while not driving.done() and expiries < 10:
                sandbox.faults(expire_sessions=True)
                expiries += 1
                await asyncio.wait([driving], timeout=1)
            finals = await driving

        assert expiries >= 2, "the deals finished before sessions could expire twice"
        logins = sandbox.control("GET", "stats").get("POST /services/oauth2/token", 0)
        assert logins >= 2, sandbox.control("GET", "stats")
        for deal, final in zip(deals, finals, strict=True):
            assert final.done
            assert_salesforce_once(sandbox.activity(deal), final.workflow_id)


async def driver_status(drivers: list[Driver], wf_id: str) -> object:
    from support.faults import status_or_none

    driver = next(d for d in drivers if d.workflow_id == wf_id)
    st = await status_or_none(driver.client.get_workflow_handle(wf_id))
    assert st is not None, wf_id
    return st


async def _until_stage(driver: Driver, stage: Stage, waiting_on: str, within_s: float = 30) -> None:
    from support.faults import status_or_none

    handle = driver.client.get_workflow_handle(driver.workflow_id)
    for _ in range(int(within_s / 0.2)):
        st = await status_or_none(handle)
        if st is not None and st.stage == stage and st.waiting_on == waiting_on:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{driver.workflow_id} never reached {stage}/{waiting_on}")


async def _until_written(
    sandbox: object, deal: str, prop: str, value: str, within_s: float = 30
) -> None:
    """Wait until the sandbox deal holds `prop == value` (a transition was written)."""
    for _ in range(int(within_s / 0.2)):
        if sandbox.activity(deal)["deal"].get(prop) == value:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"deal {deal} never got {prop}={value!r}")

"""At-least-once, unordered deliveries: HubSpot webhooks sent 3-10 times each, shuffled,
to two API replicas, and signals repeated out of order. Each has its effect once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from support.faults import (
    EVIDENCE_TASKS,
    OPS,
    OWNER,
    QUALIFY,
    Driver,
    assert_hubspot_once,
    drive_all,
    hubspot_deal,
    hubspot_store,
    status_or_none,
)
from support.handoffs import tolerant_of_load
from support.hubspot import running_sandbox
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from connectors.hubspot import DEFAULT_MAPPING
from worker.http.ingress.hubspot import build_router, sign_v3
from worker.http.ingress.temporal_starter import TemporalStarter
from worker.processes.worker import build_worker
from workflows.names import Msg, WaitingOn
from workflows.policy import default_policy

pytestmark = pytest.mark.integration

SECRET = "fault-suite-app-secret"
BASE = "http://handoff.test"
SEED = 7
DEALS = 10


@asynccontextmanager
async def replica(client: Client, task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    """One API replica's webhook ingress (its own in-memory dedup) over ASGI."""
    app = FastAPI()
    policy = default_policy()
    app.include_router(
        build_router(
            client_secret=SecretStr(SECRET),
            starter=TemporalStarter(client, policy, task_queue),
            policy=policy,
            mapping=DEFAULT_MAPPING,
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


async def deliver(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    body = json.dumps(events).encode()
    stamp = int(time.time() * 1000)
    headers = {
        "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", f"{BASE}/webhooks/hubspot", body, stamp),
        "X-HubSpot-Request-Timestamp": str(stamp),
        "Content-Type": "application/json",
    }
    return await http.post("/webhooks/hubspot", content=body, headers=headers)


def deal_events(deal_id: str, first_id: int) -> list[dict[str, Any]]:
    """Creation, the four qualification ticks and a scope edit, in occurrence order."""
    start = 1_795_000_000_000
    changes = [("dealstage", "appointmentscheduled")] + [(k, "true") for k in QUALIFY]
    changes.append(("scope", "Two sites and a depot"))
    events = [{"subscriptionType": "deal.creation", "propertyName": None, "propertyValue": None}]
    events += [
        {"subscriptionType": "deal.propertyChange", "propertyName": p, "propertyValue": v}
        for p, v in changes
    ]
    return [
        {**e, "eventId": first_id + i, "objectId": int(deal_id), "occurredAt": start + i,
         "portalId": 62515, "subscriptionId": 1, "attemptNumber": 0}
        for i, e in enumerate(events)
    ]  # fmt: skip


async def test_duplicated_shuffled_webhooks_and_signals_have_one_effect_each(
    dev_env: WorkflowEnvironment, tmp_path: Path, task_queue: str
) -> None:
    """Every webhook 3-10 times to two replicas, signals thrice: one start, one record each."""
    rng = random.Random(SEED)
    client = dev_env.client
    with running_sandbox(hubspot_store(tmp_path / "hubspot.sqlite3")) as sandbox:
        sandbox.limits(max=2000)
        deals = [hubspot_deal(sandbox, f"Hook {i}") for i in range(DEALS)]
        for deal in deals:  # what the webhooks report is true in the CRM too
            props = {k: "true" for k in QUALIFY} | {"scope": "Two sites and a depot"}
            sandbox.api("PATCH", f"/crm/v3/objects/deals/{deal}", json={"properties": props})
        deliveries = [
            [e]
            for n, deal in enumerate(deals)
            for e in deal_events(deal, 1000 * (n + 1))
            for _ in range(rng.randint(3, 10))
        ]
        rng.shuffle(deliveries)
        connector = sandbox.connector()
        async with (
            tolerant_of_load(build_worker(client, task_queue=task_queue, connector=connector)),
            replica(client, task_queue) as one,
            replica(client, task_queue) as two,
        ):
            answers = Counter()
            for events in deliveries:
                response = await deliver(rng.choice([one, two]), events)
                assert response.status_code == 200, response.text
                answers.update(response.json())
            assert answers["accepted"] + answers["duplicates"] == len(deliveries)
            assert answers["duplicates"] > 0

            drivers = [Driver(client, "hubspot", d) for d in deals]
            for driver in drivers:  # signals repeated and out of order, ahead of their stage
                signals = [
                    (Msg.ADD_EVIDENCE, {"kind": "payment_received", "by": OWNER}),
                    (Msg.ADD_EVIDENCE, {"kind": "delivery_confirmed", "by": OPS}),
                    (Msg.ADD_EVIDENCE, {"kind": "contract_signed", "by": OWNER}),
                ] * 3
                rng.shuffle(signals)
                handle = client.get_workflow_handle(driver.workflow_id)
                for name, payload in signals:
                    await handle.signal(name, payload)
            await asyncio.gather(*(_accept_thrice(client, d) for d in drivers))
            finals = await drive_all(drivers, within_s=90)

        for deal, final in zip(deals, finals, strict=True):
            kinds = [e.kind for e in final.evidence]
            assert sorted(kinds) == sorted(
                [*QUALIFY, "contract_signed", "delivery_confirmed", "payment_received"]
            ), kinds
            assert [h.kind for h in final.history].count("started") == 1
            assert [a.team for a in final.accepted] == ["operations"]
            assert final.done
            assert_hubspot_once(
                sandbox.activity(deal), final.workflow_id, approvals=0, early=EVIDENCE_TASKS
            )
            runs = [w async for w in client.list_workflows(f"WorkflowId = '{final.workflow_id}'")]
            assert len(runs) == 1, runs


async def _accept_thrice(client: Client, driver: Driver, within_s: float = 60) -> None:
    """When the deal waits on operations, accept three times in a row."""
    handle = client.get_workflow_handle(driver.workflow_id)
    for _ in range(int(within_s / 0.2)):
        st = await status_or_none(handle)
        if st is not None and st.waiting_on == WaitingOn.ACCEPTANCE:
            for _ in range(3):
                await handle.signal(Msg.ACCEPT_HANDOFF, {"team": "operations", "by": OPS})
            driver.sent.add(f"accept:{st.stage}")
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{driver.workflow_id} never waited on acceptance")

"""The Salesforce change feed: a burst of changes, a worker stopped mid-page, echoes.

The poller runs on a real dev server with the real SalesforceConnector against the
HTTPS sandbox; a recording sink stands in for the lead-to-cash side, so what the feed
delivered can be compared with what changed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from support.handoffs import tolerant_of_load
from support.salesforce import (
    API,
    Sandbox,
    auth_for,
    connector_for,
    running_sandbox,
    sales_rep_session,
)
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from connectors.salesforce import SalesforceConnector
from worker.processes.worker import build_worker
from workflows.change_feed import ChangeFeed, ChangeFeedInput, FeedState
from workflows.names import QUERY_STATUS
from workflows.policy import default_policy

pytestmark = pytest.mark.integration


class RecordingSink:
    """Remembers every delivery as (deal, event id); can be slowed down."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.triggers: list[tuple[str, str]] = []
        self.changes: list[tuple[str, str]] = []
        self.changed_by: dict[str, str | None] = {}  # deal → who made its last change
        self.delay_s = delay_s

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        self.triggers.append((deal_id, event_id))

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        self.changes.append((deal_id, event_id))

    async def deal_changed(
        self,
        crm: str,
        deal_id: str,
        fields: dict[str, str],
        event_id: str,
        occurred_at: datetime | None = None,
        changed_by: str | None = None,
    ) -> None:
        await asyncio.sleep(self.delay_s)
        self.changes.append((deal_id, event_id))
        self.changed_by[deal_id] = changed_by


def create_opportunities(sandbox: Sandbox, count: int, stage: str = "Prospecting") -> set[str]:
    """Create `count` opportunities as the sales rep would, 200 per collection call."""
    session = sales_rep_session(sandbox)
    ids: set[str] = set()
    for start in range(0, count, 200):
        records = [
            {
                "attributes": {"type": "Opportunity"},
                "Name": f"Burst {i}",
                "StageName": stage,
                "CloseDate": "2026-12-31",
                "Amount": 1000 + i,
            }
            for i in range(start, min(start + 200, count))
        ]
        response = sandbox.rest(
            "POST",
            f"{API}/composite/sobjects",
            json={"allOrNone": True, "records": records},
            headers={"Authorization": f"Bearer {session}"},
        )
        assert response.status_code == 200, response.text
        ids |= {r["id"] for r in response.json()}
    return ids


@asynccontextmanager
async def feed_worker(
    client: Client, task_queue: str, connector: SalesforceConnector, sink: RecordingSink
) -> AsyncIterator[None]:
    async with tolerant_of_load(
        build_worker(client, task_queue=task_queue, connector=connector, events=sink)
    ):
        yield


async def feed_status(client: Client, wf_id: str) -> FeedState:
    return await client.get_workflow_handle(wf_id).query(QUERY_STATUS, result_type=FeedState)


async def wait_for(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_burst_of_1000_changes_is_delivered_once_across_a_mid_page_stop(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """1,000 new deals reach the sink; stopping the worker mid-page loses none, and any
    redelivery repeats the same event id (which the target workflow drops)."""
    client = dev_env.client
    with running_sandbox(tmp_path) as sandbox:
        connector = connector_for(sandbox, auth_for(sandbox, "client_credentials"), settle_s=0)
        created = create_opportunities(sandbox, 1000)
        await asyncio.sleep(1.2)  # the sandbox's Date header moves on whole seconds
        sink, tq, wf_id = RecordingSink(delay_s=0.002), f"tq-{uuid.uuid4()}", f"feed-{uuid.uuid4()}"
        inp = ChangeFeedInput(
            crm="salesforce",
            policy=default_policy(),
            poll_every_s=0.5,
            page_size=150,
            pages_per_run=3,
        )
        async with feed_worker(client, tq, connector, sink):
            await client.start_workflow(ChangeFeed.run, inp, id=wf_id, task_queue=tq)
            await wait_for(lambda: len(sink.changes) > 400)
        stopped_at = len(sink.changes)  # the worker stopped in the middle of a page
        async with feed_worker(client, tq, connector, sink):
            await wait_for(lambda: created <= {d for d, _ in sink.changes})
            status = await feed_status(client, wf_id)
            await client.get_workflow_handle(wf_id).terminate("test finished")

    assert 0 < stopped_at < 1000
    assert created <= {d for d, _ in sink.triggers}  # each new deal starts its handoff
    ids_per_deal: dict[str, set[str]] = defaultdict(set)
    for deal, event in sink.changes:
        ids_per_deal[deal].add(event)
    assert all(len(ids_per_deal[d]) == 1 for d in created)  # one event id per change
    assert status.pages >= 7 and status.dispatched >= 1000


async def test_own_writes_are_recognised_and_delivered_only_as_changes(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A write made by Handoff's API user comes back as an echo: counted, and delivered
    as a change (the row may carry a rep's edit made just before), never as a start.
    Each change names the Salesforce user who made it (LastModifiedById's email)."""
    client = dev_env.client
    with running_sandbox(tmp_path) as sandbox:
        connector = connector_for(sandbox, auth_for(sandbox, "client_credentials"), settle_s=0)
        (user_change,) = create_opportunities(sandbox, 1)
        own = create_opportunities(sandbox, 1)
        (own_id,) = own
        connector.update_deal(own_id, {"handoff_status": "waiting"}, key="k")
        await asyncio.sleep(1.2)
        sink, tq, wf_id = RecordingSink(), f"tq-{uuid.uuid4()}", f"feed-{uuid.uuid4()}"
        inp = ChangeFeedInput(crm="salesforce", policy=default_policy(), poll_every_s=0.5)
        async with feed_worker(client, tq, connector, sink):
            await client.start_workflow(ChangeFeed.run, inp, id=wf_id, task_queue=tq)
            await wait_for(lambda: {user_change, own_id} <= {d for d, _ in sink.changes})
            status = await feed_status(client, wf_id)
            await client.get_workflow_handle(wf_id).terminate("test finished")
    assert own_id in {d for d, _ in sink.changes}
    assert own_id not in {d for d, _ in sink.triggers}
    assert status.echoes >= 1
    assert sink.changed_by[user_change] == "sam.rep@example.com"
    assert sink.changed_by[own_id] not in {None, "sam.rep@example.com"}

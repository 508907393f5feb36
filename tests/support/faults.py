"""Helpers for the fault suite: deals in the sandboxes, a driver that walks many deals to
cash through the `temporal` client while things break, and the exactly-once checks.

The driver only acts on what `status` says (approve the pending tier, accept the
handoff, give the evidence the stage waits for), so it works whatever order the worker,
the server or the CRM recover in. Every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from sandbox.common import free_port
from support.handoffs import CONTRACT_FIELDS
from support.hubspot import store_with_unique_ids
from workflows import names
from workflows.messages import DealStatus
from workflows.names import Msg, Stage, WaitingOn

OWNER = "sam.rep@example.com"
MANAGER = "maya.manager@example.com"
OPS = "olga.ops@example.com"
BILLING = "bill.billing@example.com"
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")
#: The evidence each stage waits for, and who gives it.
STAGE_EVIDENCE = {
    Stage.QUALIFY: [(k, OWNER) for k in QUALIFY],
    Stage.CLOSE: [("contract_signed", OWNER)],
    Stage.DELIVERY: [("delivery_confirmed", OPS)],
    Stage.CASH: [("payment_received", BILLING)],
}

#: Key suffixes (after `lead-to-cash-<crm>-<deal>:`) of the notes a clean run writes:
#: one per transition that carries a note. An approval round adds none of its own here.
NOTE_SUFFIXES = {
    "deal_desk:r1:sales_manager:note:0",  # qualified (only on the approval path: its first tier)
    "close:t0:note:0",  # deal desk → close
    "sales_to_ops:accept:note:0",  # closed won
    "delivery:note:0",  # handoff sales → ops
    "cash:note:0",  # delivered + handoff ops → billing
    "done:note:0",  # cash received
    "done:note:1",  # lead to cash complete
}

QUALIFY_TASK = f"qualify:task:{OWNER}"
CLOSE_TASK = f"close:t0:task:{OWNER}"
#: The tasks of evidence waits: absent when the evidence was given before the wait.
EVIDENCE_TASKS = frozenset(
    {QUALIFY_TASK, CLOSE_TASK, f"delivery:task:{OPS}", f"cash:task:{BILLING}"}
)
#: The tasks: one per wait someone owes (an evidence wait's only if the evidence came after).
TASK_SUFFIXES = {
    QUALIFY_TASK,
    CLOSE_TASK,
    f"sales_to_ops:accept:task:{OPS}",
    f"delivery:task:{OPS}",
    f"cash:task:{BILLING}",
}


def hubspot_store(path: Path) -> Path:
    """A seeded sandbox portal whose ids never collide with other tests' workflows."""
    return store_with_unique_ids(path)


def hubspot_deal(sandbox: Any, name: str, discount: float = 5) -> str:
    """A new HubSpot deal with every contract field filled (the Handoff owner: OWNER)."""
    response = sandbox.api(
        "POST",
        "/crm/v3/objects/deals",
        json={
            "properties": {
                "dealname": name,
                "amount": "50000",
                "discount_percent": str(discount),
                "dealstage": "appointmentscheduled",
                "handoff_owner_email": OWNER,
                **CONTRACT_FIELDS,
            }
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def status_or_none(handle: WorkflowHandle[Any, Any]) -> DealStatus | None:
    """The status, or None while nobody can answer (no worker, server down)."""
    from worker.client.handoffs import status_of

    try:  # the client path `handoff status` takes: a closed run answers with its result
        return await asyncio.wait_for(status_of(handle._client, handle.id), timeout=5)
    except Exception:  # any failure to answer means "ask again later"
        return None


#: How soon a Driver asks its deal's status again: soon while the deal moves (it sent a
#: message, or the status changed), seldom while it waits (a worker killed, a retry's
#: backoff). Each ask is a query the worker answers: a dozen drivers asking every 0.3 s
#: throughout kept the worker and the dev server busy with ~40 queries a second, most
#: of a fault test's CPU.
POLL_S = (0.3, 1.0)


@dataclass
class Driver:
    """Walks one deal to cash by reacting to its status; each message is sent once."""

    client: Client
    crm: str
    deal_id: str
    sent: set[str] = field(default_factory=set)
    last: DealStatus | None = None

    @property
    def workflow_id(self) -> str:
        return names.lead_to_cash_id(self.crm, self.deal_id)

    async def send(self, tag: str, name: str, payload: dict[str, Any]) -> None:
        if tag in self.sent:
            return
        try:
            await self.client.get_workflow_handle(self.workflow_id).signal(
                name, payload, rpc_timeout=timedelta(seconds=5)
            )
        except Exception:  # the server may be down: the next poll sends it again
            return
        self.sent.add(tag)

    async def step(self, st: DealStatus) -> None:
        for kind, by in STAGE_EVIDENCE.get(Stage(st.stage), []):
            await self.send(f"evidence:{kind}", Msg.ADD_EVIDENCE, {"kind": kind, "by": by})
        pending = st.pending_approval
        if pending is not None:
            await self.send(
                f"approve:{pending.round}:{pending.tier}",
                Msg.APPROVE,
                {"approver": pending.approvers[0], "reason": f"fine for {pending.tier}"},
            )
        if st.waiting_on == WaitingOn.ACCEPTANCE:
            await self.send(
                f"accept:{st.stage}", Msg.ACCEPT_HANDOFF, {"team": "operations", "by": OPS}
            )

    async def _closed(self, handle: WorkflowHandle[Any, Any]) -> bool:
        """`done` is set before the final write-back: the run closing means it is written."""
        try:
            await asyncio.wait_for(handle.result(), timeout=5)
        except Exception:  # still writing, or the server is unreachable: poll again
            return False
        return True

    async def run(self, within_s: float) -> DealStatus:
        handle = self.client.get_workflow_handle(self.workflow_id)
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            st, before, sent = await status_or_none(handle), self.last, len(self.sent)
            if st is not None:
                self.last = st
                if st.done and await self._closed(handle):
                    return st
                await self.step(st)
            moving = st is not None and (st != before or len(self.sent) > sent)
            await asyncio.sleep(POLL_S[0] if moving else POLL_S[1])
        last = self.last
        raise AssertionError(
            f"{self.workflow_id} did not finish: stage={last and last.stage} "
            f"waiting_on={last and last.waiting_on} "
            f"history={[h.detail for h in last.history[-5:]] if last else None}"
        )


async def drive_all(drivers: list[Driver], within_s: float) -> list[DealStatus]:
    """Drive every deal at once; each must close within `within_s` seconds."""
    return list(await asyncio.gather(*(d.run(within_s) for d in drivers)))


async def start_all(client: Client, crm: str, deal_ids: list[str], task_queue: str) -> None:
    from worker.client import handoffs
    from worker.client.handoffs import HandoffRef
    from workflows.policy import default_policy

    policy = default_policy()
    for deal_id in deal_ids:
        ref = HandoffRef.of("lead-to-cash", crm, deal_id)
        _, started = await handoffs.start(client, ref, policy=policy, task_queue=task_queue)
        assert started, deal_id


def duplicates(values: list[str]) -> dict[str, int]:
    return {v: n for v, n in Counter(values).items() if n > 1}


def assert_hubspot_once(
    activity: dict[str, Any],
    wf_id: str,
    approvals: int,
    early: frozenset[str] = frozenset({QUALIFY_TASK}),
) -> None:
    """A finished deal holds every expected note, task and order exactly once.

    `early`: tasks that may be missing because their evidence came before the wait.
    """
    deal = activity["deal"]
    assert deal["dealstage"] == "closedwon", deal
    assert deal["handoff_status"] == "complete", deal
    for kind in ("notes", "tasks", "orders"):
        keys = [r["handoff_key"] for r in activity[kind]]
        assert not duplicates(keys), (wf_id, kind, duplicates(keys))
        assert all(k.startswith(f"{wf_id}:") for k in keys), (wf_id, kind, keys)
    bodies = [n["hs_note_body"] for n in activity["notes"]]
    assert not duplicates(bodies), (wf_id, duplicates(bodies))
    expected = {s for s in NOTE_SUFFIXES if approvals or not s.startswith("deal_desk:")}
    notes = {n["handoff_key"].removeprefix(f"{wf_id}:") for n in activity["notes"]}
    assert notes == expected, (wf_id, "missing", expected - notes, "extra", notes - expected)
    tasks = {t["handoff_key"].removeprefix(f"{wf_id}:") for t in activity["tasks"]}
    assert tasks - early == TASK_SUFFIXES - early, (wf_id, tasks)
    assert [o["handoff_key"] for o in activity["orders"]] == [f"{wf_id}:billing"]


async def workflow_task_failures(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The WorkflowTaskFailed events of a workflow's history (there should be none)."""
    history = await handle.fetch_history()
    return [
        str(e.workflow_task_failed_event_attributes.failure.message)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


# -- a Temporal dev server of our own (to stop and restart on the same SQLite file) ------
@dataclass
class OwnServer:
    """`temporal server start-dev` on a SQLite file, on free loopback ports."""

    db: Path
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:  # sized for a loaded 2-core runner
        from workflows.names import SEARCH_ATTRIBUTES

        cli = shutil.which("temporal", path=str(Path(sys.executable).parent)) or "temporal"
        attrs = [
            a for n, k in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{n}={k}")
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [cli, "server", "start-dev", "--db-filename", str(self.db), "--ip", "127.0.0.1",
                 "--port", str(self.port), "--ui-port", str(free_port()), "--headless",
                 "--http-port", str(free_port()), "--metrics-port", str(free_port()), *attrs],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"temporal exited:\n{self.log.read_text()[-3000:]}")
            if _port_open(self.port):
                return
            time.sleep(0.1)
        raise AssertionError(f"temporal did not listen:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 30) -> None:
        """SIGINT and wait: the server shuts down cleanly, its SQLite file stays."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def own_server(tmp: Path) -> Iterator[OwnServer]:
    server = OwnServer(db=tmp / "t.db", log=tmp / "temporal.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def connect(address: str, within_s: float = 30) -> Client:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def worker_logs_with(state_dir: Path, text: bytes) -> dict[str, bool]:
    """Each worker process's log file → whether it contains `text`."""
    return {p.name: text in p.read_bytes() for p in sorted(state_dir.glob("worker-*.log"))}


SF_API = "/services/data/v59.0"


def salesforce_account(sandbox: Any, name: str = "Acme Corp") -> str:
    """A seeded Account's id (an Order needs the opportunity's account)."""
    from simple_salesforce.format import format_soql

    soql = format_soql("SELECT Id FROM Account WHERE Name = {}", name)
    response = sandbox.rest("GET", f"{SF_API}/query/", params={"q": soql})
    return str(response.json()["records"][0]["Id"])


def salesforce_deal(sandbox: Any, name: str, account_id: str, discount: float = 5) -> str:
    """A new Opportunity with every contract field filled, in the sandbox org."""
    response = sandbox.rest(
        "POST",
        f"{SF_API}/sobjects/Opportunity/",
        json={
            "Name": name,
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "Amount": 50000,
            "Discount_Percent__c": discount,
            "Scope__c": CONTRACT_FIELDS["scope"],
            "Start_Date__c": CONTRACT_FIELDS["start_date"],
            "Site_Notes__c": CONTRACT_FIELDS["site_notes"],
            "Primary_Contact__c": CONTRACT_FIELDS["primary_contact"],
            "Promised__c": CONTRACT_FIELDS["promised"],
            "Billing_Contact__c": CONTRACT_FIELDS["billing_contact"],
            "PO_Number__c": CONTRACT_FIELDS["po_number"],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_salesforce_once(activity: dict[str, Any], wf_id: str) -> None:
    """A finished Opportunity holds each note, task and order exactly once."""
    opp = activity["opportunity"]
    assert opp["StageName"] == "Closed Won", opp
    assert opp["Handoff_Status__c"] == "complete", opp
    for kind in ("notes", "tasks", "orders"):
        keys = [r["Handoff_Key__c"] for r in activity[kind]]
        assert not duplicates(keys), (wf_id, kind, duplicates(keys))
    bodies = [n["Body"] for n in activity["notes"]]
    assert not duplicates(bodies), (wf_id, duplicates(bodies))
    notes = {n["Handoff_Key__c"].removeprefix(f"{wf_id}:") for n in activity["notes"]}
    assert notes == {s for s in NOTE_SUFFIXES if not s.startswith("deal_desk:")}, notes
    assert [o["Handoff_Key__c"] for o in activity["orders"]] == [f"{wf_id}:billing"]


async def activities_idle(client: Client, wf_ids: list[str], within_s: float = 10) -> None:
    """Wait until no activity of these workflows is running (only scheduled or backing
    off), so the time-skipping server can skip without holding its lock (sdk-java#1138)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        running = 0
        for wf_id in wf_ids:
            desc = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace, execution=WorkflowExecution(workflow_id=wf_id)
                )
            )
            running += sum(_running(a) for a in desc.pending_activities)
        if not running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"activities kept running for {within_s}s")


def _running(info: Any) -> bool:
    """An attempt is under way: started, and not yet completed (the test server keeps
    STARTED while an activity backs off between attempts)."""
    from temporalio.api.enums.v1 import PendingActivityState

    if info.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
        return False
    started = info.last_started_time.ToNanoseconds()
    return bool(info.last_attempt_complete_time.ToNanoseconds() < started)


async def pending_attempts(client: Client, wf_id: str) -> list[tuple[str, int, str]]:
    """(activity type, attempt, last failure message) of a workflow's pending activities."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    desc = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=wf_id)
        )
    )
    return [
        (a.activity_type.name, a.attempt, a.last_failure.message) for a in desc.pending_activities
    ]

"""Running Handoff workflows in tests: a worker on a memory CRM, starting and polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    DescribeWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.notify import Notice
from connectors.base import Deal
from connectors.memory import MemoryConnector
from worker.processes.crm import sample_deals
from worker.processes.worker import build_worker
from workflows import names, registry
from workflows.lead_to_cash import LeadToCash
from workflows.messages import DealStatus
from workflows.policy import Policy, default_policy, parse_policy

OWNER = "sam.rep@example.com"
MANAGER = "maya.manager@example.com"
VP = "victor.vp@example.com"
CFO = "carla.cfo@example.com"
OPS = "olga.ops@example.com"
BILLING = "bill.billing@example.com"
SALES_OPS = "sol.salesops@example.com"

#: Every field the sales → ops and ops → billing contracts ask for, filled in.
CONTRACT_FIELDS = {
    "scope": "Two sites",
    "start_date": "2026-12-01",
    "site_notes": "Gate B",
    "primary_contact": "bob@initech.example",
    "promised": "Training included",
    "billing_contact": "ap@initech.example",
    "po_number": "PO-1",
}

QUALIFY_EVIDENCE = (
    "need_confirmed",
    "budget_confirmed",
    "decision_maker_identified",
    "timeline_confirmed",
)

#: Every field both handoff contracts need: the demo deal 1001's (see worker/processes/crm.py).
COMPLETE_FIELDS = sample_deals()[0].fields


class RecordingNotifier:
    """Keeps every notice, so tests can see who was asked, reminded or escalated to."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.notices.append(notice)

    def subjects_for(self, person: str) -> list[str]:
        return [n.subject for n in self.notices if person in n.to]


def deal_id_of(handle: WorkflowHandle[Any, Any]) -> str:
    """The deal id inside a `lead-to-cash-<crm>-<deal>` workflow id."""
    return handle.id.split("-", 4)[-1]


def make_deal(deal_id: str = "D-1", discount: float = 30.0, **fields: str) -> Deal:
    return Deal(
        id=deal_id,
        name=f"Deal {deal_id}",
        crm_stage="new",
        amount=100_000.0,
        discount_percent=discount,
        owner_email=OWNER,
        fields={**COMPLETE_FIELDS, **fields},
    )


def policy_with(**changes: Any) -> Policy:
    """The default policy with top-level sections replaced or tweaked (as plain data)."""
    data = default_policy().model_dump(mode="json")
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[int(p) if p.isdigit() else p]
        node[leaf] = value
    return parse_policy(data)


@asynccontextmanager
async def handoff_worker(
    client: Client,
    task_queue: str,
    connector: MemoryConnector,
    notifier: RecordingNotifier | None = None,
) -> AsyncIterator[RecordingNotifier]:
    notifier = notifier or RecordingNotifier()
    worker = build_worker(client, task_queue=task_queue, connector=connector, notifier=notifier)
    async with tolerant_of_load(worker):
        try:
            yield notifier
        finally:
            await terminate_started(client, task_queue)


#: Real seconds a workflow activation may run before the SDK calls it a deadlock
#: (TMPRL1101; the SDK's own is 2 s). On a 2-core runner with four test processes, a new
#: run's first activation (its sandboxed imports) took longer than 2 s of wall time, and
#: the test failed on CPU starvation, not on a blocked workflow. A real deadlock still
#: fails, after this long.
DEADLOCK_SECONDS = 30


def tolerant_of_load(worker: Worker) -> Worker:
    """A test worker whose deadlock detector allows `DEADLOCK_SECONDS`. The SDK has no
    option for it, so this sets its private field, and fails loudly if that is gone."""
    workflows = getattr(worker, "_workflow_worker", None)
    if workflows is None or not hasattr(workflows, "_deadlock_timeout_seconds"):
        raise RuntimeError("temporalio changed: find the deadlock timeout again")
    workflows._deadlock_timeout_seconds = DEADLOCK_SECONDS
    return worker


_started: dict[str, list[str]] = {}


def track(task_queue: str, wf_id: str) -> None:
    """Have `terminate_started` end this handoff (and its approval rounds) after the test."""
    _started.setdefault(task_queue, []).append(wf_id)


async def terminate_started(client: Client, task_queue: str) -> None:
    """End what a test left running: timers of abandoned workflows would keep firing
    on the shared time-skipping server."""
    for wf_id in _started.pop(task_queue, []):
        handle = client.get_workflow_handle(wf_id)
        rounds = (await status(handle)).approval_round
        for target in [
            wf_id,
            *(names.discount_approval_id(wf_id, r) for r in range(1, rounds + 1)),
        ]:
            await _await_no_pending_activities(client, target)
        # the time-skipping server does not apply parent-close policies: end children too
        for target in [
            wf_id,
            *(names.discount_approval_id(wf_id, r) for r in range(1, rounds + 1)),
        ]:
            try:
                await client.get_workflow_handle(target).terminate("test finished")
            except RPCError as exc:  # already complete
                if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                    raise


async def delete_started_since(client: Client, since: datetime) -> int:
    """Delete every workflow started on this server at or after `since`, running or
    closed; returns how many. On the shared dev server a workflow whose worker has stopped
    answers no query, not even a closed one's status: every later listing (`handoff
    stuck`, the stall board, the inbox) waited out the query timeout for each one still
    running (10 s a batch of 16), and a later test that starts the same deal id (a
    seeded deal) found the old closed run and waited 10 s on its status to judge a
    re-open. Deleted, the next test finds the server as a test alone would."""
    query = f"StartTime >= '{since.isoformat()}'"
    deleted = 0
    async for wf in client.list_workflows(query):
        request = DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=wf.id, run_id=wf.run_id),
        )
        try:
            await client.workflow_service.delete_workflow_execution(request)
            deleted += 1
        except RPCError as exc:
            # gone meanwhile (its parent's deletion took it), or a busy server: a run
            # left behind only slows later tests, so no verdict waits on this
            if exc.status not in _LEFT_BEHIND_OK:
                raise
    return deleted


_LEFT_BEHIND_OK = (
    RPCStatusCode.NOT_FOUND,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
)


async def _await_no_pending_activities(client: Client, wf_id: str, timeout: float = 10) -> None:
    """The test server leaks a time-skipping lock for an activity that is still running
    when its workflow ends (temporalio/sdk-java#1138), so let activities finish first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            desc = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace, execution=WorkflowExecution(workflow_id=wf_id)
                )
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return  # never started (a round the test ended before)
            raise
        if not desc.pending_activities and not desc.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)


async def skip(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], delta: timedelta
) -> None:
    """Skip time once the handoff is idle: sleeping while an activity runs can leave the
    test server's time-skipping lock held (temporalio/sdk-java#1138)."""
    await _await_no_pending_activities(env.client, handle.id)
    await asyncio.sleep(0.2)  # and still idle a moment later: nothing was about to start
    await _await_no_pending_activities(env.client, handle.id)
    await skip_time(env, delta)


#: How long one time skip may take in real seconds. The test server fires every timer
#: inside the skipped span and waits for the worker to finish the tasks each one causes
#: (reminders, escalations, CRM writes), so a skip over a busy week takes real time; on a
#: loaded 2-core runner it took longer than the client's default 30 s deadline
#: ("Timeout expired"). Past this the server's time-skipping lock has leaked
#: (sdk-java#1138) and the test fails here, well inside pytest's own 300 s.
#: A skip is never retried: a retry would skip the time twice.
SKIP_DEADLINE = timedelta(minutes=2)


async def skip_time(env: WorkflowEnvironment, delta: timedelta) -> None:
    """`env.sleep(delta)` on the time-skipping server, with a deadline sized for a
    loaded runner instead of the client's 30 s default."""
    req = SleepRequest()
    req.duration.FromTimedelta(delta)
    await env.client.test_service.unlock_time_skipping_with_sleep(req, timeout=SKIP_DEADLINE)


async def start(
    client: Client,
    task_queue: str,
    deal_id: str,
    policy: Policy | None = None,
    crm: str = "memory",
    **overrides: Any,
) -> WorkflowHandle[LeadToCash, DealStatus]:
    inp = registry.get(names.LEAD_TO_CASH).start_input(
        crm, deal_id, policy or default_policy(), registry.Carried()
    )
    wf_id = names.lead_to_cash_id(crm, deal_id)
    track(task_queue, wf_id)
    first = await client.start_workflow(
        LeadToCash.run, inp.model_copy(update=overrides), id=wf_id, task_queue=task_queue
    )
    first_run_ids[wf_id] = first.first_execution_run_id or ""
    # a handle not pinned to the first run follows continue-as-new
    return client.get_workflow_handle_for(LeadToCash.run, wf_id)


#: workflow id → the run id `start` began with (to see continue-as-new happen)
first_run_ids: dict[str, str] = {}


async def current_run_id(client: Client, wf_id: str) -> str:
    desc = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=wf_id)
        )
    )
    return desc.workflow_execution_info.execution.run_id


async def status(handle: WorkflowHandle[Any, Any]) -> DealStatus:
    return await handle.query(names.QUERY_STATUS, result_type=DealStatus)


async def until(
    handle: WorkflowHandle[Any, Any], check: Callable[[DealStatus], bool], timeout: float = 60
) -> DealStatus:
    """Poll `status` until `check` holds (real seconds; time does not skip meanwhile).

    The default is sized for a loaded 2-core runner; a passing check returns at once."""
    deadline = time.monotonic() + timeout
    while True:
        st = await status(handle)
        if check(st):
            return st
        if time.monotonic() > deadline:
            raise AssertionError(
                f"status never matched; stage={st.stage} waiting_on={st.waiting_on} "
                f"owner={st.owner} last history={[h.detail for h in st.history[-5:]]}"
            )
        await asyncio.sleep(0.1)


async def polls(within: float = 60, every: float = 0.2) -> AsyncIterator[int]:
    """`async for _ in polls(): if done(): break` tries until `within` real seconds have
    passed, pausing `every` seconds between tries; the check after the loop gives the
    verdict. Sized for a loaded runner: a check that holds ends the loop at once."""
    deadline, tries = time.monotonic() + within, 0
    while True:
        yield tries
        tries += 1
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(every)


async def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait (real seconds) for an effect outside the workflow, such as a notice or a CRM
    record: the activity that makes it may land after the status that asked for it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.1)


async def signal(handle: WorkflowHandle[Any, Any], name: str, **payload: Any) -> None:
    await handle.signal(name, payload)


async def give_evidence(handle: WorkflowHandle[Any, Any], *kinds: str, by: str = OWNER) -> None:
    for kind in kinds:
        await signal(handle, names.Msg.ADD_EVIDENCE, kind=kind, by=by, ref=f"test:{kind}")

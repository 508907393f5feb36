"""What `handoff bench` does to workflows: drive deals through every stage with signals,
drive the bare baseline the same way, and read figures back out of histories.

Both drivers send their signals in the same groups and wait between groups the same
way (polling a query with the same backoff), so the two throughputs are comparable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.crm import OpenedDeal
from connectors.base import WriteBack
from connectors.hubspot_wire import BATCH_LIMIT as LINE_BATCH
from connectors.lines import QuoteLines
from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.devtools.bench_baseline import (
    BASELINE_SIGNAL,
    CHILD_SIGNAL,
    QUERY_CONSUMED,
    Baseline,
    ChildShape,
    Shape,
    Tick,
)
from workflows import names, registry
from workflows.messages import AcceptIn, DealStatus, DecisionIn, EvidenceIn
from workflows.names import Msg, Stage, WaitingOn
from workflows.policy import Policy
from workflows.registry import Carried

T = TypeVar("T")
OWNER, MANAGER, VP = "sam.rep@example.com", "maya.manager@example.com", "victor.vp@example.com"
OPS, BILLING = "olga.ops@example.com", "bill.billing@example.com"
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")
#: Signals per group; the driver waits for the workflow to act between groups.
#: Lead to cash: 4 evidence | manager approval | VP approval | contract | accept +
#: delivery | payment.
SIGNAL_GROUPS = (4, 1, 1, 1, 2, 1)
POLL_FIRST_S, POLL_CAP_S, WAIT_TIMEOUT_S = 0.1, 0.2, 300.0
WRITE_BACK = "crm.write_back"


async def until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    limit_s: float = WAIT_TIMEOUT_S,
    cap_s: float = POLL_CAP_S,
) -> None:
    """Poll `check` with a backoff (first after 100 ms, growing to 200 ms) until it holds.

    Every poll is a query the worker must answer, so polling faster loads the very
    worker being measured (5 ms → 50 ms made queries the bottleneck on 2 cores), and a
    query that lands in the transition it waits for takes the worker's CPU from that
    transition: polling from 20 ms, one at a time approval → write-back measured p50
    79 ms, against 65 ms polling from 100 ms (back to back, on one machine). A message
    sent to the worker is never polled for at once. The bare baseline is driven by this
    same loop. `cap_s` spaces out a costly check (a count over thousands of runs)."""
    delay, deadline = POLL_FIRST_S, time.monotonic() + limit_s
    while True:
        await asyncio.sleep(delay)
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        delay = min(delay * 1.5, cap_s)


@dataclass(frozen=True)
class BenchRef(HandoffRef):
    """A bench deal's lead-to-cash handoff. Its workflow id is the public one plus the
    run tag, so reruns against the same cluster (whose sandbox deal ids start over) never
    collide; everything else goes through the one client path like any other ref."""

    run_tag: str = ""

    @property
    def workflow_id(self) -> str:
        return f"{super().workflow_id}-{self.run_tag}"


def bench_ref(deal_id: str, run_tag: str, crm: str = "hubspot") -> BenchRef:
    return BenchRef(registry.get(names.LEAD_TO_CASH), crm, deal_id, run_tag)


async def start_handoff(
    client: Client,
    task_queue: str,
    policy: Policy,
    deal_id: str,
    run_tag: str,
    crm: str = "hubspot",
) -> WorkflowHandle[Any, DealStatus]:
    """Start one bench deal's handoff (one start call: lead-to-cash carries nothing)."""
    handle, started = await handoffs.start(
        client,
        bench_ref(deal_id, run_tag, crm),
        policy=policy,
        task_queue=task_queue,
        carried=Carried(),
    )
    if not started:  # never measure a run twice
        raise RuntimeError(f"bench handoff {handle.id} was already started")
    return handle


async def drive_handoff(
    client: Client,
    task_queue: str,
    policy: Policy,
    deal_id: str,
    run_tag: str,
    crm: str = "hubspot",
) -> str:
    """Lead to cash for one deal, each signal sent as soon as its stage is reached.

    Messages go as signals (`handoffs.signal`), as the bench's baseline shape counts
    them, and each wait polls the `status` query (`handoffs.status`): one call each."""
    ref = bench_ref(deal_id, run_tag, crm)
    handle = await start_handoff(client, task_queue, policy, deal_id, run_tag, crm)

    async def send(name: str, payload: BaseModel) -> None:
        if not await handoffs.signal(client, ref, name, payload):
            raise RuntimeError(f"bench handoff {ref} is not running: {name} not delivered")

    async def pending(tier: str) -> bool:
        st = await handoffs.status(client, ref)
        return st.pending_approval is not None and st.pending_approval.tier == tier

    async def stage(name: str, on: WaitingOn | None = None) -> bool:
        st = await handoffs.status(client, ref)
        return st.stage == name and (on is None or st.waiting_on == on)

    async def evidence(kind: str, by: str) -> None:
        await send(Msg.ADD_EVIDENCE, EvidenceIn(kind=kind, by=by, ref="bench"))

    for kind in QUALIFY:
        await evidence(kind, OWNER)
    await until(lambda: pending("sales_manager"), "the sales manager's approval")
    await send(Msg.APPROVE, DecisionIn(approver=MANAGER, reason="bench: in budget"))
    await until(lambda: pending("vp"), "the VP's approval")
    await send(Msg.APPROVE, DecisionIn(approver=VP, reason="bench: strategic"))
    await until(lambda: stage(Stage.CLOSE), "the close stage")
    await evidence("contract_signed", OWNER)
    await until(lambda: stage(Stage.SALES_TO_OPS, WaitingOn.ACCEPTANCE), "the ops handoff")
    await send(Msg.ACCEPT_HANDOFF, AcceptIn(team="operations", by=OPS))
    await evidence("delivery_confirmed", OPS)
    await until(lambda: stage(Stage.CASH), "the cash stage")
    await evidence("payment_received", BILLING)
    await handle.result()
    return ref.workflow_id


async def drive_baseline(client: Client, task_queue: str, shape: Shape, wf_id: str) -> str:
    """The bare baseline, signalled in the same groups with the same waits (raw client
    calls: it is no handoff, so the handoff client path does not reach it)."""
    handle = await client.start_workflow(Baseline.run, shape, id=wf_id, task_queue=task_queue)
    sent = 0

    async def consumed() -> bool:
        done: int = await handle.query(QUERY_CONSUMED)
        return done >= sent

    for i, group in enumerate(SIGNAL_GROUPS):
        if i:
            await until(consumed, f"baseline step {sent}")
        for _ in range(group):
            await handle.signal(BASELINE_SIGNAL, Tick(n=sent))
            sent += 1
    await handle.result()
    return wf_id


async def pool(
    items: Sequence[T],
    run: Callable[[T], Awaitable[str]],
    concurrency: int,
    advance: Callable[[], None],
) -> tuple[list[str], float]:
    """Run `run` over `items`, at most `concurrency` at once; (results, elapsed seconds)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> str:
        async with gate:
            result = await run(item)
        advance()
        return result

    began = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in items))
    return list(results), time.perf_counter() - began


# -- reading histories -------------------------------------------------------------------
def _of(events: Iterable[HistoryEvent], kind: int) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == kind]


def _at(event: HistoryEvent) -> datetime:
    moment: datetime = event.event_time.ToDatetime()
    return moment


@dataclass
class HistoryFacts:
    """What one lead-to-cash run (parent and its approval child) did."""

    events: int
    child_events: int
    shape: Shape
    timers_started: int
    search_attribute_upserts: int
    write_backs: int
    expected_crm_calls: int
    activity_retries: int
    notes: dict[str, int] = field(default_factory=dict)


def _from_workflow(event: HistoryEvent) -> bool:
    """A signal sent by another workflow (the approval child's progress), not a client."""
    attrs = event.workflow_execution_signaled_event_attributes
    return bool(attrs.external_workflow_execution.workflow_id) or attrs.signal_name in (
        names.APPROVAL_PROGRESS,
        CHILD_SIGNAL,
    )


def shape_of(parent: WorkflowHistory, child: WorkflowHistory | None) -> Shape:
    """The baseline shape that matches this history: same activities, timers, signals."""
    p, c = list(parent.events), list(child.events) if child else []
    signalled = _of(p, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    from_child = [e for e in signalled if _from_workflow(e)]
    return Shape(
        activities=len(_of(p, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)),
        timers=len(_of(p, EventType.EVENT_TYPE_TIMER_STARTED)),
        client_signals=len(signalled) - len(from_child),
        children=len(_of(p, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)),
        signals_to_child=len(
            _of(p, EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
        ),
        child=ChildShape(
            activities=len(_of(c, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)),
            timers=len(_of(c, EventType.EVENT_TYPE_TIMER_STARTED)),
            signals_from_parent=len(_of(c, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)),
            signals_to_parent=len(
                _of(c, EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
            ),
        ),
    )


def approval_to_writeback(parent: WorkflowHistory) -> dict[str, float] | None:
    """Server timestamps, in ms: the last `approve` signal received → the next
    `crm.write_back` activity completed (the deal-desk → close transition is then in
    the CRM), split into where the time goes."""
    events = list(parent.events)
    approvals = [
        e
        for e in _of(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        if e.workflow_execution_signaled_event_attributes.signal_name == Msg.APPROVE
    ]
    if not approvals:
        return None
    last = approvals[-1]
    write = next(
        (
            e
            for e in _of(events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
            if e.event_id > last.event_id
            and e.activity_task_scheduled_event_attributes.activity_type.name == WRITE_BACK
        ),
        None,
    )
    if write is None:
        return None

    def following(kind: int, scheduled: Callable[[HistoryEvent], int]) -> HistoryEvent | None:
        return next((e for e in _of(events, kind) if scheduled(e) == write.event_id), None)

    started = following(
        EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        lambda e: e.activity_task_started_event_attributes.scheduled_event_id,
    )
    done = following(
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        lambda e: e.activity_task_completed_event_attributes.scheduled_event_id,
    )
    child_done = next(
        (
            e
            for e in _of(events, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED)
            if last.event_id < e.event_id < write.event_id
        ),
        last,
    )
    if started is None or done is None:
        return None

    def ms(a: HistoryEvent, b: HistoryEvent) -> float:
        return (_at(b) - _at(a)).total_seconds() * 1000

    return {
        "total": ms(last, done),
        "approval_round_closes": ms(last, child_done),
        "transition_scheduled": ms(child_done, write),
        "write_queued": ms(write, started),
        "write_runs": ms(started, done),
    }


def activity_retries(history: WorkflowHistory) -> int:
    """Temporal-level activity retries (a started event records its final attempt)."""
    return sum(
        e.activity_task_started_event_attributes.attempt - 1
        for e in _of(history.events, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    )


#: HubSpot: the owners page a worker reads once (and caches) to assign tasks natively.
DIRECTORY_READS_PER_WORKER = 1


def expected_crm_calls(histories: Iterable[WorkflowHistory]) -> tuple[int, int]:
    """(write-backs, the HubSpot calls they need at the minimum) from activity inputs.

    A write-back is one GET when it compares a field with what Handoff last saw, one
    PATCH when it sets fields, one batch create (associations included) for its notes
    and one for its tasks, one batch update (by key) when it completes earlier tasks, and
    a batch read before it when it also moves some; a billing document is one create
    with its association; reading the deal is one GET; reading its quote is one page of
    line-item associations, and one batch read per 100 lines it found (`crm.open_deal`
    reads both: the owner's team comes from the owners page below). (Plus
    `DIRECTORY_READS_PER_WORKER` per worker.)
    """
    converter = pydantic_data_converter.payload_converter
    writes = calls = 0
    for history in histories:
        results = {
            e.activity_task_completed_event_attributes.scheduled_event_id: (
                e.activity_task_completed_event_attributes.result
            )
            for e in _of(history.events, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        }
        for e in _of(history.events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED):
            attrs = e.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            if name == WRITE_BACK:
                batch = converter.from_payloads(list(attrs.input.payloads), [WriteBack])[0]
                assert isinstance(batch, WriteBack)
                writes += 1
                calls += 1 if set(batch.expected) & set(batch.fields) else 0
                calls += 1 if batch.fields else 0
                calls += 1 if batch.notes else 0
                calls += 1 if batch.tasks else 0
                calls += 1 if batch.complete_tasks or batch.reassign_tasks else 0
                calls += 1 if batch.reassign_tasks else 0
            elif name == "crm.create_billing_document" or name == "crm.get_deal":
                calls += 1
            elif name in ("crm.get_line_items", "crm.open_deal"):
                found = results.get(e.event_id)
                kind = QuoteLines if name == "crm.get_line_items" else OpenedDeal
                got = converter.from_payloads(list(found.payloads), [kind])[0] if found else None
                quote = got.lines if isinstance(got, OpenedDeal) else got
                lines = len(quote.lines) if isinstance(quote, QuoteLines) else 0
                calls += 1 + -(-lines // LINE_BATCH)
                calls += 1 if name == "crm.open_deal" else 0  # the deal's GET
    return writes, calls


def history_facts(parent: WorkflowHistory, child: WorkflowHistory | None) -> HistoryFacts:
    both = [parent, *([child] if child else [])]
    writes, calls = expected_crm_calls(both)
    return HistoryFacts(
        events=len(parent.events),
        child_events=len(child.events) if child else 0,
        shape=shape_of(parent, child),
        timers_started=sum(len(_of(h.events, EventType.EVENT_TYPE_TIMER_STARTED)) for h in both),
        search_attribute_upserts=len(
            _of(parent.events, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        ),
        write_backs=writes,
        expected_crm_calls=calls,
        activity_retries=sum(activity_retries(h) for h in both),
    )


async def histories(client: Client, wf_id: str) -> tuple[WorkflowHistory, WorkflowHistory | None]:
    """A lead-to-cash run's history and its first approval round's."""
    parent = await client.get_workflow_handle(wf_id).fetch_history()
    try:
        child = await client.get_workflow_handle(
            names.discount_approval_id(wf_id, 1)
        ).fetch_history()
    except Exception:  # a deal within the automatic tier has no approval child
        child = None
    return parent, child


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank), min, max and the sample count."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
        return round(ordered[index], 2)

    return {
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
        "n": len(ordered),
    }

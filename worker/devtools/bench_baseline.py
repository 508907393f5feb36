"""BENCHMARK ONLY: a bare Temporal workflow shaped like one lead-to-cash handoff.

`handoff bench` compares Handoff's throughput with this. It has no business logic: it
runs the same number of activities (no-ops), timers (started, then cancelled, as SLA
clocks are when the evidence arrives first), client signals, child workflows and
parent↔child signals as a real `LeadToCash` history counted in the same run. Only the
bench worker (`worker/devtools/bench_worker.py`) registers it; the product worker never
does, and like every dev tool it is not in the production wheel or image.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

BASELINE_SIGNAL = "baseline_signal"
CHILD_SIGNAL = "baseline_child_signal"
QUERY_CONSUMED = "consumed"
_TIMER = timedelta(hours=1)
_ACTIVITY_TIMEOUT = timedelta(seconds=30)


class ChildShape(BaseModel):
    """What one child run does: activities, timers and signals sent to its parent."""

    activities: int = 0
    timers: int = 0
    signals_from_parent: int = 0
    signals_to_parent: int = 0
    parent_id: str = ""


class Shape(BaseModel):
    """What one workflow run does (counted from a real history)."""

    activities: int = 0
    timers: int = 0
    client_signals: int = 0
    children: int = 0
    signals_to_child: int = 0
    child: ChildShape | None = None


class Tick(BaseModel):
    """A signal or activity payload (kept small, like Handoff's messages)."""

    n: int = 0


class Done(BaseModel):
    """The result of a baseline run."""

    activities: int


@activity.defn(name="bench.noop")
def noop(tick: Tick) -> Tick:
    """A synchronous no-op activity (Handoff's CRM activities are synchronous too)."""
    return tick


async def _activity(n: int) -> None:
    await workflow.execute_activity(noop, Tick(n=n), start_to_close_timeout=_ACTIVITY_TIMEOUT)


def _share(total: int, step: int, steps: int) -> int:
    """How many of `total` things are due by the end of `step` (spread evenly)."""
    return (total * (step + 1)) // steps


@workflow.defn
class BaselineChild:
    """The baseline's child: waits for the parent's signals, works, signals back."""

    def __init__(self) -> None:
        self.received = 0

    @workflow.run
    async def run(self, shape: ChildShape) -> Done:
        pending = [
            asyncio.ensure_future(asyncio.sleep(_TIMER.total_seconds()))
            for _ in range(shape.timers)
        ]
        await workflow.wait_condition(lambda: self.received >= shape.signals_from_parent)
        for timer in pending:
            timer.cancel()
        parent = workflow.get_external_workflow_handle(shape.parent_id)
        for i in range(shape.signals_to_parent):
            await parent.signal(CHILD_SIGNAL, Tick(n=i))
        for i in range(shape.activities):
            await _activity(i)
        return Done(activities=shape.activities)

    @workflow.signal(name=CHILD_SIGNAL)
    def tick(self, _: Tick) -> None:
        self.received += 1


@workflow.defn
class Baseline:
    """The bare parent: client signals in order, activities and timers spread across them."""

    def __init__(self) -> None:
        self.received = 0
        self.consumed = 0

    @workflow.run
    async def run(self, shape: Shape) -> Done:
        steps = max(1, shape.client_signals)
        activities = timers = 0
        for step in range(steps):
            pending = [
                asyncio.ensure_future(asyncio.sleep(_TIMER.total_seconds()))
                for _ in range(_share(shape.timers, step, steps) - timers)
            ]
            timers += len(pending)
            await workflow.wait_condition(lambda: self.received > self.consumed)
            for timer in pending:
                timer.cancel()
            self.consumed = step + 1
            for _ in range(_share(shape.activities, step, steps) - activities):
                await _activity(activities)
                activities += 1
            if step == steps // 2:
                await self._children(shape)
        return Done(activities=activities)

    async def _children(self, shape: Shape) -> None:
        for i in range(shape.children):
            child_shape = (shape.child or ChildShape()).model_copy(
                update={"parent_id": workflow.info().workflow_id}
            )
            handle = await workflow.start_child_workflow(
                BaselineChild.run, child_shape, id=f"{workflow.info().workflow_id}-child-{i}"
            )
            for n in range(shape.signals_to_child):
                await handle.signal(CHILD_SIGNAL, Tick(n=n))
            await handle

    @workflow.signal(name=BASELINE_SIGNAL)
    def signal(self, _: Tick) -> None:
        self.received += 1

    @workflow.signal(name=CHILD_SIGNAL)
    def from_child(self, _: Tick) -> None:
        """Signals from the child (like `approval_progress`); counted, not awaited."""

    @workflow.query(name=QUERY_CONSUMED)
    def progress(self) -> int:
        """How many client signals the run has acted on (the driver waits on this)."""
        return self.consumed

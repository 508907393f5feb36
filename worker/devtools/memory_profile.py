"""DEVELOPER TOOL: where a parked handoff's worker memory goes (tracemalloc + RSS).

    python -m worker.devtools.memory_profile --cache 50 --past 150

Runs the product worker (`build_worker`, its sandbox runner and options) in this process
against a Temporal dev server (`temporal` on PATH) and the in-memory CRM, with a workflow
cache of `--cache` runs. It parks handoffs on the sales manager's approval in three
steps: `--warm` (imports and caches warmed; not measured), up to `--cache` (every run
still cached: the cost **per cached run**), then `--past` more (the cache is full and
evicts: the cost **per parked handoff past the cache**, which should be ~0). After each
step it collects garbage and reads RSS (psutil), Python's traced heap (tracemalloc) and
the live module and class objects, and prints the step's top allocation sites per run
and the classes that gained live copies (a module re-imported into each run's sandbox
and still held after the run was evicted shows here). RSS minus the traced heap is
native memory: the Rust SDK core, pydantic-core validators, allocator slack. Tracing
slows parking; keep the counts modest on a shared machine (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import time
import tracemalloc
import types
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.notify import Notice
from connectors.base import Deal
from connectors.memory import MemoryConnector
from worker.client import handoffs
from worker.devtools.bench_drive import until
from worker.processes import worker as worker_process
from worker.processes.crm import sample_deals
from workflows import names, registry
from workflows.names import SEARCH_ATTRIBUTES, WaitingOn
from workflows.policy import default_policy

QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")
DISCOUNT = 20.0  # one approval tier: the sales manager (as `handoff bench` parks)
CONCURRENCY = 32
PARK_TIMEOUT_S = 1800.0


class Quiet:
    """A notifier that sends nothing (the profile measures the worker, not logging)."""

    def send(self, notice: Notice) -> None:
        pass


@dataclass
class Reading:
    parked: int
    rss_mib: float
    traced_mib: float
    modules: int
    classes: int
    copies: Counter[str]  # classes by name, counting each live copy
    snapshot: tracemalloc.Snapshot


def read(parked: int) -> Reading:
    gc.collect()
    live = gc.get_objects()
    return Reading(
        parked=parked,
        rss_mib=psutil.Process().memory_info().rss / 2**20,
        traced_mib=tracemalloc.get_traced_memory()[0] / 2**20,
        modules=sum(isinstance(o, types.ModuleType) for o in live),
        classes=sum(isinstance(o, type) for o in live),
        copies=Counter(
            f"{o.__module__}.{o.__qualname__}"
            for o in live
            if isinstance(o, type) and isinstance(o.__dict__.get("__module__"), str)
        ),
        snapshot=tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        ),
    )


def report(before: Reading, after: Reading, label: str, top: int, key: str) -> None:
    n = after.parked - before.parked
    if n <= 0:
        return
    kib = 1024 / n
    rss, traced = after.rss_mib - before.rss_mib, after.traced_mib - before.traced_mib
    print(f"\n== {label}: {before.parked} -> {after.parked} parked ({n} handoffs)")
    modules, classes = after.modules - before.modules, after.classes - before.classes
    print(
        f"   per handoff: RSS {rss * kib:,.1f} KiB, traced Python heap {traced * kib:,.1f} KiB, "
        f"native/other {(rss - traced) * kib:,.1f} KiB; live modules {modules / n:+.1f}, "
        f"classes {classes / n:+.1f}"
    )
    # a class with more live copies than before is re-imported per run and kept alive:
    # past the cache, something outside the evicted run still holds it
    grown = (after.copies - before.copies).most_common(5)
    if grown:
        print("   classes with more live copies: " + ", ".join(f"{k} +{v}" for k, v in grown))
    stats = after.snapshot.compare_to(before.snapshot, key)
    for s in stats[:top]:
        frame = s.traceback[0]
        where = frame.filename if key == "filename" else f"{frame.filename}:{frame.lineno}"
        print(f"   {s.size_diff / n / 1024:9.1f} KiB {s.count_diff / n:+8.1f} blocks  {where}")


async def park(client: Client, task_queue: str, deals: Sequence[str]) -> None:
    ltc = registry.get(names.LEAD_TO_CASH)
    policy = default_policy()
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(deal: str) -> None:
        async with sem:
            ref = handoffs.HandoffRef(ltc, "memory", deal)
            await handoffs.start(client, ref, policy=policy, task_queue=task_queue)

    await asyncio.gather(*(one(d) for d in deals))


async def until_parked(client: Client, task_queue: str, count: int) -> None:
    query = (
        handoffs.running_query(
            [registry.get(names.LEAD_TO_CASH)], waiting_on=WaitingOn.DISCOUNT_APPROVAL.value
        )
        + f" AND TaskQueue = {handoffs.quote(task_queue)}"
    )

    async def parked() -> bool:
        return (await client.count_workflows(query)).count >= count

    await until(parked, f"{count} handoffs parked", PARK_TIMEOUT_S)
    await asyncio.sleep(2.0)  # the last activities and notifications settle


async def main(args: argparse.Namespace) -> None:
    temporal = shutil.which("temporal")
    if temporal is None:
        raise SystemExit("`temporal` (the Temporal CLI) is not on PATH")
    total = args.warm + args.cache + args.past
    fields = {**sample_deals()[0].fields, **dict.fromkeys(QUALIFY, "true")}
    deals = [
        Deal(
            id=f"P{i}",
            name=f"Deal P{i}",
            crm_stage="new",
            amount=100_000.0,
            discount_percent=DISCOUNT,
            owner_email="sam.rep@example.com",
            fields=fields,
        )
        for i in range(total)
    ]
    crm = MemoryConnector(deals)
    crm.managers["sam.rep@example.com"] = "maya.manager@example.com"
    attrs = [a for n, k in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{n}={k}")]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=attrs,
        ui=False,
    )
    worker_process.MAX_CACHED_WORKFLOWS = args.cache  # `build_worker` reads it
    task_queue = f"memory-profile-{uuid.uuid4().hex[:8]}"
    async with env:
        wkr = worker_process.build_worker(
            env.client, task_queue=task_queue, connector=crm, notifier=Quiet()
        )
        async with wkr:
            ids = [d.id for d in deals]
            began = time.perf_counter()
            await park(env.client, task_queue, ids[: args.warm])
            await until_parked(env.client, task_queue, args.warm)
            tracemalloc.start(args.frames)
            steps = [read(args.warm)]
            for upto, label in (
                (args.warm + args.cache, "every run cached"),
                (total, "past the cache"),
            ):
                await park(env.client, task_queue, ids[steps[-1].parked : upto])
                await until_parked(env.client, task_queue, upto)
                steps.append(read(upto))
                report(steps[-2], steps[-1], label, args.top, args.key)
            tracemalloc.stop()
            print(f"\nparked {total} in {time.perf_counter() - began:.0f} s; readings:")
            for r in steps:
                print(
                    f"   {r.parked:6d} parked: RSS {r.rss_mib:7.1f} MiB, traced {r.traced_mib:6.1f}"
                    f" MiB, {r.modules} modules, {r.classes} classes"
                )


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=int, default=50, help="workflow cache (runs)")
    p.add_argument("--warm", type=int, default=10, help="parked before measuring")
    p.add_argument("--past", type=int, default=150, help="parked past the cache")
    p.add_argument("--top", type=int, default=15, help="allocation sites shown per step")
    p.add_argument("--key", choices=("filename", "lineno"), default="filename")
    p.add_argument("--frames", type=int, default=1, help="tracemalloc frames kept")
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    cli()

"""`handoff bench`'s memory phase: a fresh worker, handoffs parked on approval, and the
worker's RSS read at checkpoints below and above the workflow cache; then, on the same
worker, the earliest-parked handoffs approved after eviction (`bench_evict`)."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from rich.progress import Progress
from temporalio.client import Client

from worker.client import handoffs
from worker.devtools.bench_drive import pool, start_handoff, until
from worker.devtools.bench_evict import wake_parked
from worker.devtools.bench_stack import BenchStack, RssSampler
from worker.processes.worker import MAX_CACHED_WORKFLOWS
from workflows import names, registry
from workflows.names import WaitingOn
from workflows.policy import Policy

PARK_CONCURRENCY = 64  # workflow starts in flight while parking
SETTLE_S = 2.0  # let a parked batch's last activities finish before reading RSS
PARK_TIMEOUT_S = 600.0  # per checkpoint at least; past it the run reports what fitted
PARK_FLOOR_PER_S = 1.0  # a batch may park this slowly before it counts as stuck
#: How often a checkpoint counts its parked handoffs. The count is a visibility query
#: over every run: 0.22 s with 10,000 runs on the dev server, so counting every 0.2 s
#: (the driver's pace) could take half a core of the server from the parking it times.
PARK_POLL_S = 2.0


def checkpoints(parked: int, first: int = 0) -> list[int]:
    """Parked counts to read RSS at: halvings below `parked`, then `parked`; and `first`,
    so those handoffs park (and settle) before any other starts."""
    points = {parked, min(first, parked)}
    n = parked
    while n > 100:
        n //= 2
        points.add(n)
    return sorted(p for p in points if p > 0)


async def parked_memory(
    stack: BenchStack,
    client: Client,
    policy: Policy,
    parked_ids: list[str],
    tag: str,
    progress: Progress,
    *,
    crm: str = "hubspot",
    cache: int | None = None,
    wake: int = 0,
) -> dict[str, Any]:
    """A fresh worker (with a workflow cache of `cache` runs if given); start handoffs
    whose qualify evidence is ticked in the CRM (so each goes straight to the deal
    desk), and read RSS once each batch is parked. Then approve the `wake` earliest."""
    worker = stack.start_handoff_worker(cache)
    sampler = RssSampler(worker.pid)
    await asyncio.sleep(SETTLE_S)
    idle = round(sampler.now_mib(), 1)
    parked: dict[str, float] = {}
    task = progress.add_task("park handoffs on approval", total=max(1, len(parked_ids)))
    lead_to_cash = [registry.get(names.LEAD_TO_CASH)]
    query = (  # parked: the deal's own workflow waits on the approval ladder
        handoffs.running_query(lead_to_cash, waiting_on=WaitingOn.DISCOUNT_APPROVAL.value)
        + f" AND TaskQueue = {handoffs.quote(stack.task_queue)}"
    )
    began, started, note = time.perf_counter(), 0, None
    wf_ids: list[str] = []  # in parking order
    window = max(1, (cache or MAX_CACHED_WORKFLOWS) // 2)
    reached = 0

    async def park(deal: str) -> str:
        handle = await start_handoff(client, stack.task_queue, policy, deal, tag, crm)
        return str(handle.id)

    async def all_parked(target: int) -> bool:
        nonlocal reached
        reached = (await client.count_workflows(query)).count
        progress.update(task, completed=reached)
        return reached >= target

    with sampler:
        for point in checkpoints(len(parked_ids), wake):
            # At most half the workflow cache opening at once: a batch started whole
            # (5,000 at the last checkpoint of 10,000) opened more runs than the worker
            # caches, and each was evicted and replayed mid-opening, over and over.
            try:
                while started < point:
                    chunk = parked_ids[started : min(point, started + window)]
                    wf_ids += (await pool(chunk, park, PARK_CONCURRENCY, lambda: None))[0]
                    started += len(chunk)
                    limit = max(PARK_TIMEOUT_S, len(chunk) / PARK_FLOOR_PER_S)
                    await until(
                        partial(all_parked, started),
                        f"{started} handoffs parked",
                        limit,
                        cap_s=PARK_POLL_S,
                    )
            except TimeoutError:  # report what fitted instead of failing the whole run
                note = f"stopped at {reached} parked: {started} not parked within {limit:.0f}s"
                parked[str(reached)] = round(sampler.now_mib(), 1)
                break
            await asyncio.sleep(SETTLE_S)
            parked[str(point)] = round(sampler.now_mib(), 1)
        park_s = time.perf_counter() - began
    woken, wake = None, min(wake, len(parked_ids))
    if wake and note is None:
        total = wake * (2 if len(parked_ids) >= 2 * wake else 1)
        waking = progress.add_task("approve parked (cached, evicted)", total=total)
        woken = await wake_parked(
            client,
            wf_ids,
            wake=wake,
            cache=cache or MAX_CACHED_WORKFLOWS,
            metrics_port=worker.metrics_port,
            advance=lambda: progress.advance(waking),
        )
    worker.stop()
    return {
        "parked": parked,
        "woken": woken,
        "idle_mib": idle,
        "peak_while_parking_mib": round(sampler.peak_mib, 1),
        "parked_per_s": round(started / park_s, 1) if parked_ids else None,
        "park_s": round(park_s, 1),
        "stopped": note,
        "runs_per_parked_handoff": 1,
        "note": "RSS of the worker process (psutil) after each batch settled; a parked "
        "handoff is 1 workflow run (the ladder runs inside LeadToCash), so the "
        f"cache of {cache or MAX_CACHED_WORKFLOWS} runs is full at "
        f"{cache or MAX_CACHED_WORKFLOWS} parked handoffs",
    }

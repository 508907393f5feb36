"""`handoff bench`: what one worker carries, measured end to end on this machine.

With no address it starts an embedded Temporal dev server (SQLite in a temp dir,
Handoff's search attributes registered) and, always, a CRM sandbox: HubSpot's, or with
``--crm salesforce`` Salesforce's over HTTPS (`bench_salesforce`). The worker runs as
its own process (`python -m worker worker`), so its memory is its own. In order:

1. warm-up: two handoffs; the first one's history gives the baseline its shape;
2. baseline: the bare `worker.devtools.bench_baseline` workflow, same counts of activities, timers,
   signals and children, driven the same way, on the same server (own worker process);
3. throughput: ``--handoffs`` deals from lead to cash with every signal (bounded
   concurrency), CRM calls counted by the sandbox, latency read from histories; then
   one handoff at a time, and the cost curve at each ``--curve`` count in flight;
4. faults: a short pass with a 5xx rate and lost responses (retries, duplicates);
5. duplicates and replay: repeated ``handoff_key``s in the CRM; replay time;
6. memory: a fresh worker with ``--parked`` handoffs parked on approval, RSS measured
   at checkpoints below and above the workflow cache; then the ``--wake`` earliest
   parked approved, woken from eviction (`bench_evict`).

Every figure is measured in the run; nothing is assumed. See docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.client.temporal import connect
from worker.devtools import bench_salesforce
from worker.devtools.bench_curves import DEFAULT_CURVE, cost_curve, handoffs_per_point
from worker.devtools.bench_drive import (
    DIRECTORY_READS_PER_WORKER,
    SIGNAL_GROUPS,
    activity_retries,
    approval_to_writeback,
    drive_baseline,
    drive_handoff,
    histories,
    history_facts,
    percentiles,
    pool,
    shape_of,
)
from worker.devtools.bench_evict import DEFAULT_WAKE
from worker.devtools.bench_parked import parked_memory
from worker.devtools.bench_report import (
    hubspot_ceiling,
    hubspot_ceiling_per_min,
    summary_table,
    targets,
)
from worker.devtools.bench_stack import BenchStack, CrmSandbox, RssSampler
from worker.devtools.dev import SQLITE_PRAGMAS, temporal_cli
from worker.processes.worker import MAX_CACHED_WORKFLOWS, workflow_runner
from worker.settings import Settings
from workflows.discount_approval import DiscountApproval
from workflows.lead_to_cash import LeadToCash
from workflows.policy import default_policy

CONCURRENCY = 16  # handoffs in flight at once during the throughput runs
WARMUP = 2
SOLO = 10  # handoffs driven one at a time for the unloaded latency
FAULT_ERROR_RATE = 0.1
REPLAYS = 5
#: Parked deals ask one approval tier (the sales manager's), so approving one after
#: eviction passes the desk and writes the close transition back at once.
PARKED_DISCOUNT = 20


@dataclass(frozen=True)
class BenchOptions:
    """What `handoff bench` was asked to run (its command-line options)."""

    handoffs: int
    parked: int
    temporal_address: str | None = None
    crm: str = "hubspot"
    curve: tuple[int, ...] = DEFAULT_CURVE
    curve_handoffs: int | None = None
    worker_cache: int | None = None
    wake: int = DEFAULT_WAKE
    sf_licenses: int = 10
    crm_latency_ms: int = 0  # added by the sandbox to every API call (a network round trip)


def run_bench(
    *,
    handoffs: int,
    parked: int,
    json_path: Path | None,
    temporal_address: str | None,
    out: Console,
    **options: Any,
) -> int:
    """Run every phase, print the summary, write the JSON; 1 if the run failed or any
    CRM write was duplicated. `options`: the other `BenchOptions`."""
    started = time.monotonic()
    opts = BenchOptions(handoffs, parked, temporal_address, **options)
    try:
        report = asyncio.run(_bench(opts, out))
    except (RuntimeError, TimeoutError, OSError) as exc:
        out.print(f"[red]bench failed: {exc}[/]")
        return 1
    report["durations_s"]["total"] = round(time.monotonic() - started, 1)
    out.print(summary_table(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        out.print(f"Figures written to {json_path}")
    return 1 if report["duplicate_writes"] else 0


async def _bench(opts: BenchOptions, out: Console) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    tag = uuid.uuid4().hex[:8]
    stack = BenchStack(
        workdir, opts.temporal_address, task_queue=f"handoff-bench-{tag}", crm=opts.crm
    )
    load_before = os.getloadavg()
    try:
        with _progress(out) as progress:
            return await _phases(stack, opts, tag, progress, load_before)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _progress(out: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
    )


class Phase:
    """One progress-bar line."""

    def __init__(self, progress: Progress, what: str, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task(what, total=max(1, total))

    def advance(self) -> None:
        self.progress.advance(self.task)

    def done(self) -> None:
        self.progress.update(self.task, completed=self.progress.tasks[self.task].total)


async def _phases(
    stack: BenchStack,
    opts: BenchOptions,
    tag: str,
    progress: Progress,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    handoffs, parked, crm = opts.handoffs, opts.parked, opts.crm
    durations: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        durations[name] = round(now - clock, 1)
        clock = now

    setup = Phase(progress, "start server, sandbox, seed deals", 3)
    if stack.temporal_address is None:
        stack.start_temporal()
    setup.advance()
    sandbox = stack.crm_sandbox()
    sandbox.set_limits()
    latency = opts.crm_latency_ms
    sandbox.faults(latency_ms=latency)
    setup.advance()
    faulted, solo = max(2, min(20, handoffs // 10)), min(SOLO, handoffs)
    deals = sandbox.create_deals(WARMUP + handoffs + solo + faulted)
    warm_ids, run_ids = deals[:WARMUP], deals[WARMUP : WARMUP + handoffs]
    solo_ids = deals[WARMUP + handoffs : WARMUP + handoffs + solo]
    fault_ids = deals[WARMUP + handoffs + solo :]
    curve_counts = handoffs_per_point(opts.curve, opts.curve_handoffs)
    curve_all = sandbox.create_deals(sum(curve_counts)) if curve_counts else []
    curve_ids = [curve_all[sum(curve_counts[:i]) :][:n] for i, n in enumerate(curve_counts)]
    parked_ids = (
        sandbox.create_deals(parked, qualified=True, discount=PARKED_DISCOUNT) if parked else []
    )
    setup.done()
    client = await connect(Settings(temporal_address=stack.temporal_address or ""))
    policy = default_policy()
    lap("setup")

    def drive() -> Callable[[str], Any]:
        async def one(deal: str) -> str:
            return await drive_handoff(client, stack.task_queue, policy, deal, tag, crm)

        return one

    # 1. warm-up and the reference history
    worker = stack.start_handoff_worker()
    warm = Phase(progress, "warm-up handoffs", WARMUP)
    warm_wf, _ = await pool(warm_ids, drive(), CONCURRENCY, warm.advance)
    ref_parent, ref_child = await histories(client, warm_wf[0])
    facts = history_facts(ref_parent, ref_child)
    worker.stop()
    lap("warmup")

    # 2. the bare baseline, on its own worker process and task queue
    base_tq = f"{stack.task_queue}-baseline"
    base_worker = stack.start_baseline_worker(base_tq)
    base = Phase(progress, "baseline (bare Temporal)", WARMUP + handoffs)
    names = [f"baseline-{tag}-{i}" for i in range(WARMUP + handoffs)]

    async def bare(wf_id: str) -> str:
        return await drive_baseline(client, base_tq, facts.shape, wf_id)

    await pool(names[:WARMUP], bare, CONCURRENCY, base.advance)
    _, base_elapsed = await pool(names[WARMUP:], bare, CONCURRENCY, base.advance)
    base_history = await client.get_workflow_handle(names[0]).fetch_history()
    base_child = (  # the baseline has a child only where the handoff had one
        await client.get_workflow_handle(f"{names[0]}-child-0").fetch_history()
        if facts.shape.children
        else None
    )
    base_shape = shape_of(base_history, base_child)
    base_worker.stop()
    lap("baseline")

    # 3. throughput, CRM calls, latency
    worker = stack.start_handoff_worker()
    sandbox.reset_stats()
    main = Phase(progress, "lead-to-cash handoffs", handoffs)
    with RssSampler(worker.pid) as rss:
        run_wf, elapsed = await pool(run_ids, drive(), CONCURRENCY, main.advance)
    stats, subrequests = sandbox.stats(), sandbox.subrequests()
    lap("throughput")
    hist = Phase(progress, "read histories", handoffs)
    run_histories = await _gather_histories(client, run_wf, hist.advance)
    splits = [s for p, _ in run_histories if (s := approval_to_writeback(p)) is not None]
    latencies = [s["total"] for s in splits]
    expected = [_expected_calls(crm, p, c) for p, c in run_histories]
    lap("histories")

    # 3b. the same latency with one handoff at a time (no queueing behind the others)
    one = Phase(progress, "one handoff at a time", len(solo_ids))
    solo_wf, _ = await pool(solo_ids, drive(), 1, one.advance)
    solo_splits = [
        s
        for p, _ in await _gather_histories(client, solo_wf, lambda: None)
        if (s := approval_to_writeback(p)) is not None
    ]
    lap("one_at_a_time")

    # 3c. the cost curve: throughput and latency at each count in flight
    curve = None
    if opts.curve:
        points = Phase(progress, f"cost curve {list(opts.curve)}", len(curve_all))
        curve = await cost_curve(
            client,
            opts.curve,
            curve_ids,
            drive(),
            points.advance,
            lambda: int(sandbox.stats().get("total", 0)),
        )
    lap("cost_curve")

    # 4. faults: a 5xx rate and lost responses
    sandbox.reset_stats()
    sandbox.faults(error_rate=FAULT_ERROR_RATE, latency_ms=latency)
    sandbox.lose_responses(len(fault_ids))
    fault = Phase(progress, "handoffs under 5xx + lost replies", len(fault_ids))
    fault_wf, fault_elapsed = await pool(fault_ids, drive(), CONCURRENCY, fault.advance)
    fault_stats = sandbox.stats()
    sandbox.faults(latency_ms=latency)
    fault_histories = await _gather_histories(client, fault_wf, lambda: None)
    worker.stop()
    lap("faults")

    # 5. duplicates and replay
    checked = [*warm_ids, *run_ids, *solo_ids, *curve_all, *fault_ids]
    dup = Phase(progress, "duplicate check", len(checked))
    duplicates = _duplicates(sandbox, checked, dup.advance)
    replay = await _replay_ms(ref_parent, ref_child)
    lap("duplicates_and_replay")

    # 6. memory with handoffs parked on approval
    memory = await parked_memory(
        stack,
        client,
        policy,
        parked_ids,
        tag,
        progress,
        crm=crm,
        cache=opts.worker_cache,
        wake=opts.wake,
    )
    lap("parked")
    sandbox.close()

    calls = stats.get("total", 0) / max(1, handoffs)
    # the throughput phase runs on one fresh worker: its directory reads serve all its handoffs
    directory = (
        bench_salesforce.DIRECTORY_READS_PER_WORKER
        if crm == "salesforce"
        else DIRECTORY_READS_PER_WORKER
    )
    clean_calls = (sum(expected) + directory) / max(1, len(expected))
    fault_expected = clean_calls * len(fault_ids)
    handoffs_per_s = handoffs / elapsed
    baseline_per_s = handoffs / base_elapsed
    report: dict[str, Any] = {
        "throughput_ratio": round(handoffs_per_s / baseline_per_s, 3),
        "handoffs_per_s": round(handoffs_per_s, 2),
        "baseline_per_s": round(baseline_per_s, 2),
        "approval_to_writeback_ms": {
            **percentiles(latencies),
            "method": "history event times: last `approve` WorkflowExecutionSignaled → "
            "ActivityTaskCompleted of the next crm.write_back (deal desk → close)",
            "concurrency": CONCURRENCY,
            "p50_split": _split(splits),
        },
        "approval_to_writeback_ms_one_at_a_time": {
            **percentiles([s["total"] for s in solo_splits]),
            "concurrency": 1,
            "p50_split": _split(solo_splits),
        },
        "approval_to_writeback_ms_woken": memory.pop("woken"),
        "cost_curve": curve,
        "worker_rss_mib_parked": memory.pop("parked"),
        "worker_rss": {**memory, "peak_during_throughput_mib": round(rss.peak_mib, 1)},
        "crm_calls_per_handoff": round(calls, 2),
        "crm_calls_minimum_per_handoff": round(clean_calls, 2),
        "crm_calls_minimum_means": "the calls one handoff needs when its deal is written "
        "alone (one deal at a time), computed from the activity inputs; on HubSpot, "
        "handoffs in flight together share batch calls (group commit), so the measured "
        "figure can go below it",
        "crm_write_backs_per_handoff": facts.write_backs,
        "crm": crm,
        "crm_calls_by_route_per_handoff": {
            k: round(v / max(1, handoffs), 2) for k, v in sorted(stats.items()) if k != "total"
        },
        "crm_subrequests_by_route_per_handoff": {
            k: round(v / max(1, handoffs), 2) for k, v in sorted(subrequests.items())
        },
        "crm_ceiling_handoffs_per_min": (
            bench_salesforce.ceiling(calls, opts.sf_licenses)["handoffs_per_min"]
            if crm == "salesforce"
            else hubspot_ceiling_per_min(calls)
        ),
        "crm_ceiling": (
            bench_salesforce.ceiling(calls, opts.sf_licenses)
            if crm == "salesforce"
            else hubspot_ceiling(calls)
        ),
        "faults": {
            "error_rate": FAULT_ERROR_RATE,
            "lost_responses": len(fault_ids),
            "handoffs": len(fault_ids),
            "handoffs_per_s": round(len(fault_ids) / fault_elapsed, 2),
            "http_requests": fault_stats.get("total", 0),
            "http_requests_minimum": round(fault_expected),
            # extra requests over the one-deal minimum: below 0 when group commit
            # shared calls between the pass's deals
            "retries_per_call": round(
                (fault_stats.get("total", 0) - fault_expected) / max(1.0, fault_expected), 3
            ),
            "activity_retries": sum(
                activity_retries(p) + (activity_retries(c) if c else 0) for p, c in fault_histories
            ),
            "completed": len(fault_wf),
        },
        "duplicate_writes": duplicates,
        "duplicate_checked_deals": len(checked),
        **replay,
        "history": {
            "events": facts.events,
            "child_events": facts.child_events,
            "search_attribute_upserts": facts.search_attribute_upserts,
            "shape": facts.shape.model_dump(),
            "baseline_shape": base_shape.model_dump(),
        },
        "config": {
            "handoffs": handoffs,
            "parked": parked,
            "crm": crm,
            "concurrency": CONCURRENCY,
            "signal_groups": list(SIGNAL_GROUPS),
            "warmup": WARMUP,
            "max_cached_workflows": MAX_CACHED_WORKFLOWS,
            "parked_worker_cache": opts.worker_cache or MAX_CACHED_WORKFLOWS,
            "parked_discount_percent": PARKED_DISCOUNT,
            "curve": list(opts.curve),
            "curve_handoffs": curve_counts,
            "wake": opts.wake,
            "sf_licenses": opts.sf_licenses if crm == "salesforce" else None,
            "crm_latency_ms": latency,
        },
        "environment": _environment(stack, load_before),
        "durations_s": durations,
    }
    report["targets"] = targets(report)
    return report


def _expected_calls(crm: str, parent: Any, child: Any) -> int:
    """The CRM calls one handoff's activities need at the minimum, for its CRM."""
    if crm == "salesforce":
        return bench_salesforce.expected_calls([parent, *([child] if child else [])])[1]
    return history_facts(parent, child).expected_crm_calls


def _split(splits: list[dict[str, float]]) -> dict[str, float]:
    """The median of each part of the approval → write-back latency."""
    parts = [k for k in (splits[0] if splits else {}) if k != "total"]
    return {k: round(statistics.median(s[k] for s in splits), 1) for k in parts}


async def _gather_histories(
    client: Client, ids: list[str], advance: Callable[[], None]
) -> list[tuple[Any, Any]]:
    gate = asyncio.Semaphore(16)

    async def one(wf_id: str) -> tuple[Any, Any]:
        async with gate:
            result = await histories(client, wf_id)
        advance()
        return result

    return list(await asyncio.gather(*(one(i) for i in ids)))


def _duplicates(sandbox: CrmSandbox, deal_ids: list[str], advance: Callable[[], None]) -> int:
    """Records beyond the first per Handoff key among each deal's notes, tasks, orders
    (`Sandbox.duplicates`, `SalesforceSandbox.duplicates`)."""
    extra = 0
    for deal in deal_ids:
        extra += sandbox.duplicates(deal)
        advance()
    return extra


async def _replay_ms(parent: Any, child: Any) -> dict[str, Any]:
    """Replay the reference lead-to-cash history as the worker would on a cache miss:
    its workflows, its sandbox runner, the pydantic data converter."""
    replayer = Replayer(
        workflows=[LeadToCash, DiscountApproval],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    times = []
    for _ in range(REPLAYS + 1):
        began = time.perf_counter()
        result = await replayer.replay_workflow(parent, raise_on_replay_failure=True)
        times.append((time.perf_counter() - began) * 1000)
        assert result.replay_failure is None
    child_ms = None
    if child is not None:
        began = time.perf_counter()
        await replayer.replay_workflow(child, raise_on_replay_failure=True)
        child_ms = round((time.perf_counter() - began) * 1000, 1)
    return {
        "replay_ms": round(statistics.median(times[1:]), 1),
        "replay_ms_first": round(times[0], 1),
        "replay_ms_child": child_ms,
        "replay_events": len(parent.events),
    }


def _environment(stack: BenchStack, load_before: tuple[float, float, float]) -> dict[str, Any]:
    from importlib.metadata import version

    server = "user cluster"
    if stack.procs and stack.procs[0].name == "temporal":
        result = subprocess.run(
            [temporal_cli(), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        pragmas = ", ".join(SQLITE_PRAGMAS)
        server = f"embedded dev server (SQLite; {pragmas}): {result.stdout.strip()}"
    return {
        "cpus": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "hubspot_api_client": version("hubspot-api-client"),
        "simple_salesforce": version("simple-salesforce"),
        "temporal_server": server,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "crm": "Salesforce sandbox (local, HTTPS, SQLite), daily allocation raised for the run"
        if stack.crm == "salesforce"
        else "HubSpot sandbox (local, SQLite), rate limit raised for the run",
    }

"""`handoff bench`'s wake-up figure: approval → CRM write-back for a handoff that was
evicted from the worker's workflow cache while it was parked.

After the parked phase the worker holds at most its cache of runs; the earliest-parked
handoffs were parked first and have not run since, so with more parked than the cache
they were evicted (least recently used first). Approving one makes the worker fetch its
whole history and replay it before it can act on the approval. The bench approves them
one at a time (so each figure is a wake-up, not a queue) and, for contrast, as many of
the most recently parked ones, which are still cached. Latency comes from history event
times exactly as `approval_to_writeback_ms`; the worker's own cache-miss counter
(``temporal_sticky_cache_miss`` on its metrics port) shows whether each group really
was replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx
from temporalio.client import Client

from worker.devtools.bench_drive import MANAGER, approval_to_writeback, percentiles, until
from workflows.messages import DecisionIn
from workflows.names import Msg

CACHE_MISS, FORCED_EVICTION = (
    "temporal_sticky_cache_miss",
    "temporal_sticky_cache_total_forced_eviction",
)
DEFAULT_WAKE = 20  # earliest-parked handoffs approved after parking


def _metric(text: str, name: str) -> float:
    """The sum of every sample of `name` in Prometheus text (all label sets)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{", "_"):
            total += float(line.rsplit(" ", 1)[-1])
    return total


def cache_counters(metrics_port: int | None) -> dict[str, float] | None:
    """The worker's sticky-cache misses and forced evictions so far (None: no port)."""
    if metrics_port is None:
        return None
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    return {"misses": _metric(text, CACHE_MISS), "evictions": _metric(text, FORCED_EVICTION)}


async def _approve_and_wait(client: Client, wf_id: str) -> dict[str, float]:
    """Approve one parked handoff (one approval tier) and wait, on the server's history
    only (a query would wake the run before the approval), for its next write-back."""
    handle = client.get_workflow_handle(wf_id)
    await handle.signal(Msg.APPROVE, DecisionIn(approver=MANAGER, reason="bench: woken"))
    found: dict[str, float] = {}

    async def written() -> bool:
        split = approval_to_writeback(await handle.fetch_history())
        if split is not None:
            found.update(split)
        return split is not None

    await until(written, f"the write-back after approving {wf_id}")
    return found


async def _group(
    client: Client, wf_ids: Sequence[str], metrics_port: int | None, advance: Callable[[], None]
) -> dict[str, Any]:
    before = cache_counters(metrics_port)
    totals = []
    for wf_id in wf_ids:
        totals.append((await _approve_and_wait(client, wf_id))["total"])
        advance()
    after = cache_counters(metrics_port)
    misses = None if before is None or after is None else round(after["misses"] - before["misses"])
    return {**percentiles(totals), "cache_misses": misses}


async def wake_parked(
    client: Client,
    wf_ids: Sequence[str],
    *,
    wake: int,
    cache: int,
    metrics_port: int | None,
    advance: Callable[[], None],
) -> dict[str, Any]:
    """Approve the `wake` earliest-parked handoffs of `wf_ids` (in parking order), after
    as many of the latest-parked ones for contrast (approved first, while still cached)."""
    earliest = list(wf_ids[:wake])
    latest = list(wf_ids[-wake:]) if len(wf_ids) >= 2 * wake else []
    cached = await _group(client, latest, metrics_port, advance) if latest else None
    woken = await _group(client, earliest, metrics_port, advance)
    parked_after = len(wf_ids) - wake
    return {
        **woken,
        "parked": len(wf_ids),
        "max_cached_workflows": cache,
        "evicted": parked_after >= cache,
        "still_cached_for_contrast": cached,
        "method": f"the {wake} earliest-parked handoffs (parked and settled before the "
        f"other {parked_after}) approved one at a time after parking; approval → "
        "write-back from history event times; `cache_misses`: the worker's "
        "temporal_sticky_cache_miss counter over the group",
        "note": None
        if parked_after >= cache
        else f"only {parked_after} handoffs were parked after them, fewer than the "
        f"cache of {cache}: they may not have been evicted (raise --parked, or lower "
        "--worker-cache)",
    }

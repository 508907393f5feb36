"""`handoff bench`'s cost curves: throughput and approval → write-back latency as the
number of handoffs in flight grows (``--curve 1,4,16,64``).

Each point drives its own fresh deals from lead to cash on the same worker, at most
`in_flight` at once, and reads the latency from the histories exactly as the main
figure does (`bench_drive.approval_to_writeback`). A point holds few handoffs, so its
throughput includes the ramp-up and the drain: read the curve for how cost grows, not
as a steady-state rate. Each point also counts the CRM calls its handoffs made (the
sandbox's counter before and after it): on HubSpot, group commit
(`connectors.hubspot_batching`) shares calls between handoffs in flight together, so
calls per handoff fall as the count in flight grows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from temporalio.client import Client

from worker.devtools.bench_drive import approval_to_writeback, histories, percentiles, pool

#: Handoffs per point by default: twice the in-flight count, at least 8 and at most 128.
PER_POINT_MIN, PER_POINT_MAX = 8, 128
DEFAULT_CURVE = (1, 4, 16, 64)


def parse_curve(text: str) -> tuple[int, ...]:
    """``"1,4,16,64"`` → (1, 4, 16, 64); empty or ``none``: no curve."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    try:
        points = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ValueError(
            f"--curve takes in-flight counts separated by commas (1,4,16,64), not {text!r}"
        ) from None
    if any(p < 1 for p in points):
        raise ValueError(f"--curve counts must be at least 1, not {text!r}")
    return tuple(sorted(set(points)))


def handoffs_per_point(points: Sequence[int], per_point: int | None) -> list[int]:
    """How many handoffs each point drives: `per_point` (at least the in-flight count,
    so every point really has that many in flight), or by default 2 x in flight, at
    least 8 and at most 128."""
    if per_point is not None:
        return [max(per_point, k) for k in points]
    return [min(PER_POINT_MAX, max(PER_POINT_MIN, 2 * k)) for k in points]


async def cost_curve(
    client: Client,
    points: Sequence[int],
    deals: Sequence[Sequence[str]],
    drive: Callable[[str], Awaitable[str]],
    advance: Callable[[], None],
    crm_calls: Callable[[], int],
) -> dict[str, Any]:
    """Drive `deals[i]` at `points[i]` in flight; throughput, latency and CRM calls per
    handoff per point (`crm_calls`: the sandbox's running count of calls)."""
    rows: list[dict[str, Any]] = []
    for in_flight, batch in zip(points, deals, strict=True):
        before = crm_calls()
        ids, elapsed = await pool(batch, drive, in_flight, advance)
        calls = crm_calls() - before
        splits = [s for wf in ids if (s := approval_to_writeback((await histories(client, wf))[0]))]
        latency = percentiles([s["total"] for s in splits])
        rows.append(
            {
                "in_flight": in_flight,
                "handoffs": len(ids),
                "elapsed_s": round(elapsed, 2),
                "handoffs_per_s": round(len(ids) / elapsed, 3),
                "approval_to_writeback_ms": latency,
                "crm_calls": calls,
                "crm_calls_per_handoff": round(calls / max(1, len(ids)), 2),
            }
        )
    return {
        "points": rows,
        "method": "each point: its own deals driven from start to done on the throughput "
        "worker, at most `in_flight` at once; handoffs_per_s = handoffs / wall time "
        "(ramp-up and drain included); latency from history event times as "
        "approval_to_writeback_ms; crm_calls: the sandbox's call counter after the point "
        "minus before it (the point's handoffs only: nothing else runs meanwhile)",
    }

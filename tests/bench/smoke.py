"""What the `handoff bench` smoke tests share: a tiny run through the CLI, and the checks
of its cost curve and wake-from-eviction figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
#: A two-point cost curve of two handoffs each, and a parked worker that caches two runs,
#: so the earliest parked handoff is evicted by the ones parked after it.
SMALL = ["--curve", "1,2", "--curve-handoffs", "2", "--worker-cache", "2", "--wake", "1"]
TARGETS = {
    "throughput",
    "approval_latency",
    "approval_latency_in_flight",
    "worker_rss",
    "parking",
    "crm_calls",
    "replay",
    "wake_latency",
}


def run_bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [str(BIN / "handoff"), "bench", *args, *SMALL, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=280,  # ~85 s at load 17 on 2 cores; 170 s ran out at load 15 (xdist) before
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def check_curve_and_wake(report: dict[str, Any], parked: int) -> None:
    """Both curve points ran their handoffs; the earliest parked was really evicted."""
    points = report["cost_curve"]["points"]
    assert [p["in_flight"] for p in points] == [1, 2]
    for point in points:
        assert point["handoffs"] == 2
        assert point["handoffs_per_s"] > 0
        latency = point["approval_to_writeback_ms"]
        assert latency["n"] == point["handoffs"]
        assert 0 < latency["p50"] <= latency["p99"]
        assert point["crm_calls"] > 0
        assert point["crm_calls_per_handoff"] == round(point["crm_calls"] / point["handoffs"], 2)
    woken = report["approval_to_writeback_ms_woken"]
    assert (woken["n"], woken["parked"], woken["max_cached_workflows"]) == (1, parked, 2)
    assert woken["evicted"] is True
    assert 0 < woken["p50"] <= woken["p99"]
    # the worker replayed it: its own cache-miss counter moved for the woken handoff
    assert woken["cache_misses"] >= woken["n"]
    assert woken["still_cached_for_contrast"]["n"] == 1
    assert set(report["targets"]) == TARGETS
    parking = report["targets"]["parking"]
    assert parking["parked"] == parked and parking["park_s"] > 0
    assert parking["met"] is False  # judged only at 10,000 parked
    assert report["targets"]["worker_rss"]["note"]

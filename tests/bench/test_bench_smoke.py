"""`handoff bench` end to end with tiny numbers: every figure is in the JSON, typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

BIN = Path(sys.executable).parent


def test_bench_reports_every_figure_and_no_duplicate_writes(tmp_path: Path) -> None:
    """A 3-handoff, 5-parked bench run writes every required key; no write is repeated."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [str(BIN / "handoff"), "bench", "--handoffs", "3", "--parked", "5", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=280,  # 3 handoffs take ~40 s quiet; 170 s ran out at load 15 (xdist)
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())

    for key in ("throughput_ratio", "handoffs_per_s", "baseline_per_s", "replay_ms"):
        assert isinstance(report[key], float), key
        assert report[key] > 0, key
    latency = report["approval_to_writeback_ms"]
    assert latency["n"] == 3
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert report["approval_to_writeback_ms_one_at_a_time"]["n"] == 3
    rss = report["worker_rss_mib_parked"]
    assert list(rss) == ["5"]
    assert rss["5"] > 0
    assert report["crm_calls_per_handoff"] > 0
    assert report["crm_calls_per_handoff"] == report["crm_calls_minimum_per_handoff"]
    # HubSpot's 190 requests per 10 s, spent on handoffs of this many calls each
    ceiling = report["crm_ceiling_handoffs_per_min"]
    assert ceiling * report["crm_calls_per_handoff"] == pytest.approx(190 * 6, rel=0.01)
    assert report["faults"]["completed"] == report["faults"]["handoffs"]
    assert isinstance(report["faults"]["retries_per_call"], float)
    assert report["duplicate_writes"] == 0
    assert report["history"]["shape"]["client_signals"] == 10
    assert report["environment"]["cpus"] >= 1
    assert set(report["targets"]) == {
        "throughput",
        "approval_latency",
        "worker_rss",
        "crm_calls",
        "replay",
    }

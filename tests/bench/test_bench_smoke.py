"""`handoff bench` end to end with tiny numbers: every figure is in the JSON, typed,
and the counts agree with each other. Speed is never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.smoke import check_curve_and_wake, run_bench

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]


def test_bench_reports_every_figure_and_no_duplicate_writes(tmp_path: Path) -> None:
    """A 3-handoff, 5-parked HubSpot run writes every required key; no write is repeated."""
    report = run_bench(tmp_path, "--handoffs", "3", "--parked", "5")

    for key in ("throughput_ratio", "handoffs_per_s", "baseline_per_s", "replay_ms"):
        assert isinstance(report[key], float), key
        assert report[key] > 0, key
    latency = report["approval_to_writeback_ms"]
    assert latency["n"] == 3
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert report["approval_to_writeback_ms_one_at_a_time"]["n"] == 3
    rss = report["worker_rss_mib_parked"]
    assert list(rss) == ["1", "5"]  # the handoff to wake parks first, on its own
    assert all(v > 0 for v in rss.values())
    assert report["crm"] == "hubspot"
    assert report["crm_calls_per_handoff"] > 0
    # handoffs in flight together share calls (group commit): at most the one-deal minimum
    assert report["crm_calls_per_handoff"] <= report["crm_calls_minimum_per_handoff"]
    assert report["crm_subrequests_by_route_per_handoff"] == {}
    # HubSpot's 190 requests per 10 s, spent on handoffs of this many calls each
    ceiling = report["crm_ceiling_handoffs_per_min"]
    assert ceiling * report["crm_calls_per_handoff"] == pytest.approx(190 * 6, rel=0.01)
    assert report["crm_ceiling"]["handoffs_per_min"] == ceiling
    assert report["faults"]["completed"] == report["faults"]["handoffs"]
    assert isinstance(report["faults"]["retries_per_call"], float)
    assert report["duplicate_writes"] == 0
    assert report["duplicate_checked_deals"] == 2 + 3 + 3 + 4 + 2  # warm, run, solo, curve, faults
    assert report["history"]["shape"]["client_signals"] == 10
    assert report["environment"]["cpus"] >= 1
    check_curve_and_wake(report, parked=5)

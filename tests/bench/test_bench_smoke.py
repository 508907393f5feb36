"""`handoff bench` end to end with tiny numbers: every figure is in the JSON, typed, and
the counts agree with each other. Speed is never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

BIN = Path(sys.executable).parent
#: A two-point cost curve of two handoffs each, and a parked worker that caches two runs,
#: so the earliest parked handoff is evicted by the ones parked after it.
SMALL = ["--curve", "1,2", "--curve-handoffs", "2", "--worker-cache", "2", "--wake", "1"]
TARGETS = {"throughput", "approval_latency", "worker_rss", "crm_calls", "replay", "wake_latency"}


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
    woken = report["approval_to_writeback_ms_woken"]
    assert (woken["n"], woken["parked"], woken["max_cached_workflows"]) == (1, parked, 2)
    assert woken["evicted"] is True
    assert 0 < woken["p50"] <= woken["p99"]
    # the worker replayed it: its own cache-miss counter moved for the woken handoff
    assert woken["cache_misses"] >= woken["n"]
    assert woken["still_cached_for_contrast"]["n"] == 1
    assert set(report["targets"]) == TARGETS


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
    assert report["crm_calls_per_handoff"] == report["crm_calls_minimum_per_handoff"]
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


def test_bench_on_salesforce_counts_composites_once_and_writes_nothing_twice(
    tmp_path: Path,
) -> None:
    """`--crm salesforce`: calls by route add up to the total (a composite is one call,
    its subrequests apart, logins none), at least the computed minimum; the daily
    ceiling is the Enterprise allocation over those calls; no Task or Order is repeated."""
    report = run_bench(
        tmp_path, "--crm", "salesforce", "--handoffs", "2", "--parked", "4", "--sf-licenses", "5"
    )

    assert report["crm"] == "salesforce"
    calls, minimum = report["crm_calls_per_handoff"], report["crm_calls_minimum_per_handoff"]
    assert minimum > 0
    assert calls >= minimum
    routes = report["crm_calls_by_route_per_handoff"]
    api_routes = {k: v for k, v in routes.items() if " /services/data/" in k}
    assert sum(api_routes.values()) == pytest.approx(calls, abs=0.05)
    assert routes["POST /services/oauth2/token"] > 0  # the worker logged in: no API call
    composites = routes["POST /services/data/v{ver}/composite"]
    subs = report["crm_subrequests_by_route_per_handoff"]
    assert sum(subs.values()) > composites  # a composite carries several writes
    transitions = subs["PATCH /services/data/v{ver}/sobjects/Opportunity/{id}"]
    assert 0 < transitions <= report["crm_write_backs_per_handoff"]
    # Enterprise: 100,000 + 1,000 per licence a day, spent on handoffs of this many calls
    ceiling = report["crm_ceiling"]
    assert ceiling["crm"] == "salesforce"
    assert ceiling["handoffs_per_day"] * calls == pytest.approx(105_000, rel=0.01)
    assert report["crm_ceiling_handoffs_per_min"] == pytest.approx(
        ceiling["handoffs_per_day"] / 1440, abs=0.1
    )
    assert report["config"]["sf_licenses"] == 5
    assert report["faults"]["completed"] == report["faults"]["handoffs"] == 2
    assert report["faults"]["lost_responses"] == 2
    assert report["duplicate_writes"] == 0
    assert report["duplicate_checked_deals"] == 2 + 2 + 2 + 4 + 2
    assert report["approval_to_writeback_ms"]["n"] == 2
    assert list(report["worker_rss_mib_parked"]) == ["1", "4"]
    check_curve_and_wake(report, parked=4)

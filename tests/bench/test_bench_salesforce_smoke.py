"""`handoff bench --crm salesforce` end to end with tiny numbers: every figure is in the
JSON, typed, and the counts agree with each other. Speed is never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.smoke import check_curve_and_wake, run_bench

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]


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

"""Stall analytics across real processes: the worker records a HubSpot deal's stages in
the state folder's store, and the CLI and the API process read them back."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support.hubspot import hubspot_stack
from support.processes import Stack
from support.salesforce import API, create_opportunity, rep_headers, salesforce_stack
from temporalio.testing import WorkflowEnvironment

from worker.stalls.figures import Filters, compute, to_csv
from worker.stalls.store import StallStore, default_dsn

from .test_cli_and_worker_kill import MANAGER, OWNER, new_deal

pytestmark = pytest.mark.integration

SALES_OPS, OPS_TOKEN = "sol.salesops@example.com", "tok-salesops-int-5e0b9a"


def at_desk(rows: list[dict[str, str]]) -> list[str]:
    return [r["count"] for r in rows if r["figure"] == "aging" and r["stage"] == "deal_desk"]


def rows_once_at_deal_desk(s: Stack) -> list[dict[str, str]]:
    """`handoff stalls --csv -` rows, once the deal desk's write-back is recorded (it may
    land a moment after `status` shows the wait): one handoff aging at the deal desk.
    Other stages may age beside it (a Salesforce org's seeded Opportunities). The wait
    reads the state folder's store in-process, as the CLI does (a CLI process per try
    cost ~1 s of CPU); the CLI answers once the store holds it."""
    deadline = time.monotonic() + 120
    while True:
        store = StallStore(default_dsn(s.state_dir))
        try:
            events = store.read()
        finally:
            store.close()
        held = to_csv(compute(events, Filters(), datetime.now(UTC)))
        if at_desk(list(csv.DictReader(io.StringIO(held)))) == ["1"]:
            out = s.handoff("stalls", "--csv", "-").stdout
            rows = list(csv.DictReader(io.StringIO(out)))
            if at_desk(rows) == ["1"] or time.monotonic() > deadline:
                return rows
        if time.monotonic() > deadline:
            return list(csv.DictReader(io.StringIO(s.handoff("stalls", "--csv", "-").stdout)))
        time.sleep(0.5)


def test_worker_records_stages_that_the_cli_and_api_read(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Qualify, then the deal desk waiting on Maya: one handoff, qualify left once, the
    deal desk open, in `handoff stalls --csv -` and in /api/stalls."""
    tokens = {"HANDOFF_API_TOKENS": json.dumps({SALES_OPS: OPS_TOKEN})}
    with hubspot_stack(dev_env, tmp_path, extra_env=tokens) as (sandbox, s, api):
        deal = new_deal(sandbox.api)
        s.worker()
        s.spawn("api", ready="Application startup complete")
        s.handoff("deal", "start", deal)
        s.qualify(deal, by=OWNER)
        s.until(deal, lambda st: st["pending_approval"] is not None, timeout=120)

        rows = rows_once_at_deal_desk(s)
        aging = [r for r in rows if r["figure"] == "aging"]
        assert [(r["stage"], r["count"]) for r in aging] == [("deal_desk", "1")], rows
        conversion = {
            r["stage"]: (r["count"], r["advanced"]) for r in rows if r["figure"] == "conversion"
        }
        assert conversion == {"qualify": ("1", "1"), "deal_desk": ("1", "0")}
        owners = {r["value"] for r in rows if r["figure"] == "waits" and r["by"] == "owner"}
        assert owners == {MANAGER}

        r = httpx.get(
            f"{api}/api/stalls",
            params={"type": "lead-to-cash"},
            headers={"Authorization": f"Bearer {OPS_TOKEN}"},
            timeout=30,
        )
        assert r.status_code == 200, (r.text, [p.read_text() for p in tmp_path.glob("api-*.log")])
        fig = r.json()
        assert (fig["handoffs"], fig["open"]) == (1, 1)
        assert [(a["stage"], a["open"]) for a in fig["aging"]] == [("deal_desk", 1)]
        assert (tmp_path / "stalls.sqlite3").exists()


def test_a_salesforce_opportunity_feeds_the_store_the_same_way(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The change feed starts the handoff; its stages are recorded under `salesforce`
    with the Opportunity's id, and the CLI shows it at the deal desk."""
    with salesforce_stack(dev_env, tmp_path) as (sandbox, s):
        rep = rep_headers(sandbox)
        accounts = sandbox.rest("GET", f"{API}/query/", params={"q": "SELECT Id FROM Account"})
        deal = create_opportunity(
            sandbox,
            rep,
            {
                "Name": "Pied Piper compression",
                "StageName": "Prospecting",
                "CloseDate": "2026-12-31",
                "Amount": 45000,
                "Discount_Percent__c": 20,
                "AccountId": accounts.json()["records"][0]["Id"],
            },
        )
        s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=120)
        s.qualify(deal, by=OWNER)
        s.until(deal, lambda st: st["pending_approval"] is not None, timeout=120)
        rows = rows_once_at_deal_desk(s)
    # the sandbox's seeded Opportunities start handoffs of their own through the feed
    aging = {r["stage"]: r["count"] for r in rows if r["figure"] == "aging"}
    assert aging["deal_desk"] == "1", rows
    store = StallStore(default_dsn(tmp_path))
    events = store.read()
    store.close()
    assert {e.crm for e in events} == {"salesforce"}
    mine = [e for e in events if e.deal_id == deal]
    assert {e.workflow_id for e in mine} == {f"lead-to-cash-salesforce-{deal}"}
    stages = [e.stage for e in mine if e.kind == "wait"]
    assert stages[0] == "qualify" and stages[-1] == "deal_desk", stages
    assert all(e.deal_id == deal or e.stage == "qualify" for e in events), events

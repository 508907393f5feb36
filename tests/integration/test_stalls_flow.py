"""Stall analytics across real processes: the worker records a HubSpot deal's stages in
the state folder's store, and the CLI and the API process read them back."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import httpx
import pytest
from hubspot_fixtures import TOKEN, running_sandbox, store_with_unique_ids
from support.processes import free_port, stack
from temporalio.testing import WorkflowEnvironment

from .test_cli_and_worker_kill import MANAGER, OWNER, new_deal

pytestmark = pytest.mark.integration

SALES_OPS, OPS_TOKEN = "sol.salesops@example.com", "tok-salesops-int-5e0b9a"


def test_worker_records_stages_that_the_cli_and_api_read(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Qualify, then the deal desk waiting on Maya: one handoff, qualify left once, the
    deal desk open, in `handoff stalls --csv -` and in /api/stalls."""
    address = dev_env.client.service_client.config.target_host
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    with (
        running_sandbox(store_with_unique_ids(tmp_path / "hubspot.sqlite3")) as sandbox,
        stack(
            address,
            tmp_path,
            extra_env={
                "HANDOFF_HUBSPOT_HOST": sandbox.base,
                "HANDOFF_HUBSPOT_TOKEN": TOKEN,
                "HANDOFF_API_PORT": str(port),
                "HANDOFF_PUBLIC_URL": api,
                "HANDOFF_API_TOKENS": json.dumps({SALES_OPS: OPS_TOKEN}),
            },
        ) as s,
    ):
        deal = new_deal(sandbox.api)
        s.worker()
        s.spawn("api", ready="Application startup complete")
        s.handoff("deal", "start", deal)
        for kind in (
            "need_confirmed",
            "budget_confirmed",
            "decision_maker_identified",
            "timeline_confirmed",
        ):
            s.handoff("evidence", "add", deal, kind, "--by", OWNER)
        s.until(deal, lambda st: st["pending_approval"] is not None, timeout=60)

        # the deal desk's write-back may land a moment after status shows the wait
        deadline = time.monotonic() + 60
        while True:
            out = s.handoff("stalls", "--csv", "-").stdout
            rows = list(csv.DictReader(io.StringIO(out)))
            aging = [r for r in rows if r["figure"] == "aging"]
            if [r["stage"] for r in aging] == ["deal_desk"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [(r["stage"], r["count"]) for r in aging] == [("deal_desk", "1")], out
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

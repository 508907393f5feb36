"""A user drives a deal with the `handoff` CLI and the `temporal` CLI while the worker
process is killed with SIGKILL twice; the handoff completes with every write once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from support.handoffs import CONTRACT_FIELDS
from support.hubspot import TOKEN, running_sandbox, store_with_unique_ids
from support.processes import stack
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration

OWNER, MANAGER, VP = "sam.rep@example.com", "maya.manager@example.com", "victor.vp@example.com"


def new_deal(sandbox_api: object) -> str:
    response = sandbox_api(  # type: ignore[operator]
        "POST",
        "/crm/v3/objects/deals",
        json={
            "properties": {
                "dealname": "Initech expansion",
                "amount": "50000",
                "discount_percent": "30",
                "dealstage": "appointmentscheduled",
                "handoff_owner_email": OWNER,
                **CONTRACT_FIELDS,
            }
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_cli_drives_a_deal_to_cash_through_worker_kills(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Start, evidence, approvals (CLI and temporal CLI), SIGKILLs, and no duplicate writes."""
    address = dev_env.client.service_client.config.target_host
    with (
        running_sandbox(store_with_unique_ids(tmp_path / "hubspot.sqlite3")) as sandbox,
        stack(
            address,
            tmp_path,
            extra_env={"HANDOFF_HUBSPOT_HOST": sandbox.base, "HANDOFF_HUBSPOT_TOKEN": TOKEN},
        ) as s,
    ):
        deal = new_deal(sandbox.api)
        worker = s.worker()
        assert "Started" in s.handoff("deal", "start", deal).stdout
        assert "Already started" in s.handoff("deal", "start", deal).stdout
        for kind in (
            "need_confirmed",
            "budget_confirmed",
            "decision_maker_identified",
            "timeline_confirmed",
        ):
            s.handoff("evidence", "add", deal, kind, "--by", OWNER, "--ref", "call notes")
        st = s.until(deal, lambda st: st["pending_approval"] is not None)
        assert st["pending_approval"]["tier"] == "sales_manager" and st["owner"] == [MANAGER]

        refused = s.handoff("approve", deal, "--as", VP, "--reason", "skip", check=False)
        assert refused.returncode == 4 and "is not an approver" in refused.stderr

        wf_id = f"lead-to-cash-hubspot-{deal}"
        s.temporal(
            "workflow",
            "signal",
            "--workflow-id",
            wf_id,
            "--name",
            "approve",
            "--input",
            f'{{"approver": "{MANAGER}", "reason": "Strategic logo"}}',
        )
        s.until(deal, lambda st: st["owner"] == [VP])

        s.kill(worker)  # mid-flow: the VP's approval arrives while no worker runs
        s.temporal(
            "workflow",
            "signal",
            "--workflow-id",
            wf_id,
            "--name",
            "approve",
            "--input",
            f'{{"approver": "{VP}", "reason": "Multi-year"}}',
        )
        worker = s.worker()
        # an activity the killed worker was running is retried after its start-to-close
        # timeout (60 s for CRM writes), so recovery can take that long
        s.until(deal, lambda st: st["stage"] == "close", timeout=120)

        s.handoff("evidence", "add", deal, "contract_signed", "--by", OWNER)
        s.kill(worker)  # again, right after the signal: the transition write may be in flight
        worker = s.worker()
        s.until(deal, lambda st: st["waiting_on"] == "acceptance", timeout=120)
        s.handoff("accept", deal, "operations", "--by", "olga.ops@example.com")
        s.handoff("evidence", "add", deal, "delivery_confirmed", "--by", "olga.ops@example.com")
        s.until(deal, lambda st: st["stage"] == "cash", timeout=120)
        s.handoff("evidence", "add", deal, "payment_received", "--by", "bill.billing@example.com")
        final = s.until(deal, lambda st: st["done"], timeout=120)

        assert [a["tier"] for a in final["approvals"]] == ["sales_manager", "vp"]
        activity = sandbox.activity(deal)
        assert activity["deal"]["dealstage"] == "closedwon"
        assert activity["deal"]["handoff_status"] == "complete"
        assert len(activity["orders"]) == 1
        for kind in ("notes", "tasks", "orders"):
            keys = Counter(r["handoff_key"] for r in activity[kind])
            assert all(n == 1 for n in keys.values()), (kind, keys)
        bodies = Counter(n["hs_note_body"] for n in activity["notes"])
        assert all(n == 1 for n in bodies.values()), bodies

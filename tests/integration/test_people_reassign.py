"""`handoff people reassign` end to end: a HubSpot deal parked on an approver who left
is moved, by the real CLI against a running worker, to whoever takes over; the CRM task
moves with it, and the new approver's decision walks the deal on."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration.test_crm_flows import COMPLETE, OWNER
from support.handoffs import QUALIFY_EVIDENCE
from support.hubspot import create_deal, hubspot_stack
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration

MAYA, AMY, SOL = "maya.manager@example.com", "amy.am@example.com", "sol.salesops@example.com"
RITA = "rita.rep@example.com"


def open_tasks_of(activity: dict[str, object], email: str) -> list[dict[str, str]]:
    tasks = activity["tasks"]
    assert isinstance(tasks, list)
    return [
        t
        for t in tasks
        if t.get("handoff_owner_email") == email and t.get("hs_task_status") != "COMPLETED"
    ]


def test_people_reassign_moves_a_deal_parked_on_a_departed_approver(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A 20% discount waits on Maya, who left: sales ops runs `handoff people reassign
    --from maya --to amy`; status names Amy, the history says who moved it, Maya's
    approval is refused, and Amy's approval moves the deal on. Then Sam, the deal's
    owner, leaves too: the close stage's CRM task becomes Rita's in HubSpot."""
    with hubspot_stack(dev_env, tmp_path) as (sandbox, s, _):
        deal = create_deal(
            sandbox,
            "Parked on Maya",
            amount="40000",
            discount_percent="20",
            owner=OWNER,
            **COMPLETE,
            **dict.fromkeys(QUALIFY_EVIDENCE, "true"),
        )
        listed = sandbox.api("GET", "/crm/v3/owners").json()["results"]
        owners = {o["email"]: o["id"] for o in listed}
        s.worker()
        s.handoff("deal", "start", deal)
        s.until(deal, lambda st: st["owner"] == [MAYA], timeout=60)
        refused = s.handoff(
            "people", "reassign", "--from", MAYA, "--to", AMY, "--as", OWNER, check=False
        )
        assert refused.returncode != 0 and "not_authorised" in refused.stdout + refused.stderr
        result = s.handoff(
            "people", "reassign", "--from", MAYA, "--to", AMY, "--as", SOL, "--reason", "left"
        )
        assert "the sales_manager approval" in result.stdout
        st = s.until(deal, lambda st: st["owner"] == [AMY])
        moves = [h for h in st["history"] if h["kind"] == "people"]
        assert len(moves) == 1 and moves[0]["by"] == SOL
        assert st["pending_approval"]["approvers"] == [AMY]

        no = s.handoff("approve", deal, "--as", MAYA, "--reason", "still here", check=False)
        assert no.returncode != 0
        s.handoff("approve", deal, "--as", AMY, "--reason", "Within guidance")
        s.until(deal, lambda st: st["stage"] == "close" and st["waiting_on"] == "evidence")
        before = sandbox.activity(deal)
        result = s.handoff(
            "people", "reassign", "--from", OWNER, "--to", RITA, "--as", SOL, "--reason", "left"
        )
        assert "1 CRM task" in result.stdout
        st = s.until(deal, lambda st: st["owner"] == [RITA])
        after = sandbox.activity(deal)  # the update returned after the CRM write

    assert [t["hubspot_owner_id"] for t in open_tasks_of(before, OWNER)] == [owners[OWNER]]
    assert not open_tasks_of(after, OWNER)
    assert [t["hubspot_owner_id"] for t in open_tasks_of(after, RITA)] == [owners[RITA]]

"""`handoff policy simulate` and `handoff policy apply --open` end to end: the real CLI
against a running worker shows what an open deal would be asked under a new file, then
moves it there; only sales ops may, and the deal's history records who did."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.processes import stack
from temporalio.testing import WorkflowEnvironment

from workflows.policy import DEFAULT_POLICY_PATH, load_policy

pytestmark = pytest.mark.integration

OWNER, MANAGER, VP = "sam.rep@example.com", "maya.manager@example.com", "victor.vp@example.com"
VERA, SOL = "vera.vp@example.com", "sol.salesops@example.com"
EVIDENCE = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")


def test_simulate_then_apply_moves_an_open_deal_to_the_new_vp(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Deal 1001 (30%) waits on Maya, then the VP. Under a file naming Vera as VP,
    simulate shows the VP tier asked of Vera; the rep may not apply it; sales ops does;
    status carries the new version, and after Maya approves, Vera is asked."""
    address = dev_env.client.service_client.config.target_host
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["people"]["vp_sales"] = [VERA]
    new_file = tmp_path / "new-policy.yaml"
    new_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    new_version = load_policy(new_file).version
    deal = "1001"
    with stack(address, tmp_path, crm="memory") as s:
        s.worker()
        s.handoff("deal", "start", deal)
        for kind in EVIDENCE:
            s.handoff("evidence", "add", deal, kind, "--by", OWNER)
        s.until(deal, lambda st: st["owner"] == [MANAGER], timeout=60)

        shown = s.handoff("policy", "simulate", str(new_file)).stdout
        assert f"now:       tier sales_manager of {MANAGER}; tier vp of {VP}" in shown
        assert f"under new: tier sales_manager of {MANAGER}; tier vp of {VERA}" in shown
        assert "1 would be asked otherwise" in shown

        no = s.handoff("policy", "apply", str(new_file), "--open", "--as", OWNER, check=False)
        assert no.returncode != 0 and "not_authorised" in no.stdout + no.stderr
        assert s.status(deal)["policy_version"] != new_version  # type: ignore[index]
        s.handoff("policy", "apply", str(new_file), "--open", "--as", SOL, "--reason", "Vera is VP")
        st = s.until(deal, lambda st: st["policy_version"] == new_version)
        moved = [h for h in st["history"] if h["detail"].startswith("policy ")]
        assert moved and moved[-1]["by"] == SOL
        s.handoff("approve", deal, "--as", MANAGER, "--reason", "Strategic logo")
        s.until(deal, lambda st: st["owner"] == [VERA])

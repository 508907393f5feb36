"""Live policy end to end: the policy file is edited under a running API and worker, and
the next deal a signed HubSpot webhook starts runs on the new version, no restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from integration.test_crm_flows import COMPLETE, OWNER, SECRET
from support.hubspot import post_webhook, running_sandbox, store_with_unique_ids
from support.hubspot import stack_env as hubspot_stack_env
from support.processes import stack
from temporalio.testing import WorkflowEnvironment

from sandbox.common import free_port
from workflows.policy import DEFAULT_POLICY_PATH, load_policy

pytestmark = pytest.mark.integration


def test_a_webhook_after_a_policy_edit_starts_on_the_new_version(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Deal A starts on the file as it was; the file is edited (a new sales manager); deal
    B, started by the next webhook, carries the new version, while A keeps the version
    it started with."""
    address = dev_env.client.service_client.config.target_host
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    policy_file = tmp_path / "policy.yaml"
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    policy_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    old = load_policy(policy_file).version
    with (
        running_sandbox(store_with_unique_ids(tmp_path / "hubspot.sqlite3")) as sandbox,
        stack(
            address,
            tmp_path,
            extra_env={
                **hubspot_stack_env(sandbox, port, SECRET),
                "HANDOFF_POLICY": str(policy_file),
            },
        ) as s,
    ):

        def new_deal(name: str) -> str:
            created = sandbox.api(
                "POST",
                "/crm/v3/objects/deals",
                json={
                    "properties": {
                        "dealname": name,
                        "amount": "40000",
                        "discount_percent": "20",
                        "dealstage": "appointmentscheduled",
                        "handoff_owner_email": OWNER,
                        **COMPLETE,
                    }
                },
            )
            return str(created.json()["id"])

        def created_by_webhook(deal: str, event_id: int) -> None:
            event = {
                "subscriptionId": 1,
                "portalId": 62515,
                "appId": 54321,
                "attemptNumber": 0,
                "objectId": int(deal),
                "eventId": event_id,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "deal.creation",
                "changeFlag": "NEW",
            }
            assert post_webhook(api, SECRET, [event]).status_code == 200

        first, second = new_deal("Before the edit"), new_deal("After the edit")
        s.worker()
        s.spawn("api", ready="Application startup complete")
        created_by_webhook(first, 1)
        before = s.until(first, lambda st: st["waiting_on"] == "evidence")

        data["people"]["sales_manager"] = ["nina.manager@example.com"]
        policy_file.write_text(yaml.safe_dump(data), encoding="utf-8")
        new = load_policy(policy_file).version
        created_by_webhook(second, 2)
        after = s.until(second, lambda st: st["waiting_on"] == "evidence")
        again = s.until(first, lambda st: st["waiting_on"] == "evidence")

    assert new != old
    assert before["policy_version"] == old
    assert after["policy_version"] == new
    assert again["policy_version"] == old  # a running handoff keeps its version

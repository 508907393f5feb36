"""`owner_manager` from the CRM, end to end: the worker reads the deal owner's manager
through the real clients when a handoff opens, and `handoff status` shows it
(Salesforce `User.ManagerId`; HubSpot owners' teams)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput
from support.hubspot import TOKEN, run_with_webhooks, running_sandbox, store_with_unique_ids
from support.hubspot import stack_env as hubspot_stack_env
from support.processes import stack
from support.salesforce import API, sales_rep_session, stack_env
from support.salesforce import running_sandbox as running_salesforce
from support.salesforce import store_with_unique_ids as salesforce_store
from temporalio.testing import WorkflowEnvironment

from sandbox.common import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAM, MAYA = "sam.rep@example.com", "maya.manager@example.com"
RITA = "rita.rep@example.com"
SECRET = "owner-manager-app-secret"


def notes(st: dict[str, Any]) -> list[str]:
    return [str(h["detail"]) for h in st["history"]]


def test_a_salesforce_handoff_reads_the_owners_manager_from_the_org(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Sam's Opportunity: his manager in the org (`ManagerId`) is Maya, and the history
    says Handoff read it from Salesforce."""
    address = dev_env.client.service_client.config.target_host
    with (
        running_salesforce(tmp_path, salesforce_store(tmp_path / "org.sqlite3")) as sandbox,
        stack(
            address,
            tmp_path,
            crm="salesforce",
            extra_env=stack_env(sandbox),
        ) as s,
    ):
        s.worker()
        rep = {"Authorization": f"Bearer {sales_rep_session(sandbox)}"}  # Sam, not Handoff
        opp = sandbox.rest(
            "POST",
            f"{API}/sobjects/Opportunity/",
            headers=rep,
            json={"Name": "Hooli", "StageName": "Prospecting", "CloseDate": "2026-12-31",
                  "Amount": 40000, "Discount_Percent__c": 5},
        )  # fmt: skip
        assert opp.status_code == 201, opp.text
        deal = opp.json()["id"]
        st = s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=60)
        assert f"{SAM}'s manager in the CRM: {MAYA}" in notes(st)


def test_a_hubspot_handoff_reads_the_owners_primary_team(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Rita's primary HubSpot team is Sales West; the default policy names no manager
    for it, so `owner_manager` is the sales manager, and the history says why."""
    address = dev_env.client.service_client.config.target_host
    port = free_port()
    with (
        running_sandbox(store_with_unique_ids(tmp_path / "hubspot.sqlite3")) as sandbox,
        stack(
            address,
            tmp_path,
            extra_env=hubspot_stack_env(sandbox, port, SECRET),
        ) as s,
    ):
        run_with_webhooks(s, sandbox, port, SECRET)
        deals = HubSpot(access_token=TOKEN, host=sandbox.base).crm.deals.basic_api
        created = deals.create(
            SimplePublicObjectInput(
                properties={"dealname": "Vandelay", "amount": "20000", "discount_percent": "5",
                            "dealstage": "appointmentscheduled", "handoff_owner_email": RITA}
            )
        )  # fmt: skip
        deal = str(created.id)
        st = s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=60)
        expected = (
            f"{RITA}'s team in the CRM (Sales West) is not in the policy's team_managers; "
            f"owner_manager is {MAYA} from the policy"
        )
        assert expected in notes(st), notes(st)

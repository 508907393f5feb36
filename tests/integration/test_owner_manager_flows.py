"""`owner_manager` from the CRM, end to end: the worker reads the deal owner's manager
through the real clients when a handoff opens, and `handoff status` shows it
(Salesforce `User.ManagerId`; HubSpot owners' teams)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput
from support.hubspot import TOKEN, hubspot_stack
from support.salesforce import create_opportunity, rep_headers, salesforce_stack
from temporalio.testing import WorkflowEnvironment

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
    with salesforce_stack(dev_env, tmp_path) as (sandbox, s):
        rep = rep_headers(sandbox)  # Sam, not Handoff
        deal = create_opportunity(
            sandbox,
            rep,
            {"Name": "Hooli", "StageName": "Prospecting", "CloseDate": "2026-12-31",
             "Amount": 40000, "Discount_Percent__c": 5},
        )  # fmt: skip
        st = s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=60)
        assert f"{SAM}'s manager in the CRM: {MAYA}" in notes(st)


def test_a_hubspot_handoff_reads_the_owners_primary_team(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Rita's primary HubSpot team is Sales West; the default policy names no manager
    for it, so `owner_manager` is the sales manager, and the history says why."""
    with hubspot_stack(dev_env, tmp_path, app_secret=SECRET, webhooks=True) as (sandbox, s, _):
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

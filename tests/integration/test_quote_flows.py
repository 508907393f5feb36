"""A rep adds a line discounted 45% to a deal in the CRM, with the CRM's own client: the
CFO is asked (the shipped policy's line rule), `handoff status` shows the line and the
real margin from the CRM's costs, and once approved that margin is written back. On
the HubSpot sandbox through its signed webhooks; on Salesforce through the change feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput
from hubspot.crm.objects import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
)
from hubspot.crm.objects import SimplePublicObjectInputForCreate as LineInput
from simple_salesforce.format import format_soql
from support.crm_truth import wait_for
from support.hubspot import TOKEN, hubspot_stack
from support.salesforce import API, create_opportunity, rep_headers, salesforce_stack
from temporalio.testing import WorkflowEnvironment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OWNER, CFO = "sam.rep@example.com", "carla.cfo@example.com"
SECRET = "quote-app-secret"
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")
LINE_TO_DEAL = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=20)


def asked_cfo(st: dict[str, Any]) -> bool:
    return (st["pending_approval"] or {}).get("tier") == "line_discount"


def test_a_rep_adds_a_45_percent_line_in_hubspot_and_the_cfo_is_asked(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Line items through hubspot-api-client; the deal's amount change reaches Handoff as
    a signed webhook, Handoff reads the lines, and asks the CFO for the 45% line."""
    with hubspot_stack(dev_env, tmp_path, app_secret=SECRET, webhooks=True) as (sandbox, s, _):
        hs = HubSpot(access_token=TOKEN, host=sandbox.base)
        created = hs.crm.deals.basic_api.create(
            SimplePublicObjectInput(
                properties={
                    "dealname": "Umbrella platform",
                    "amount": "80000",
                    "discount_percent": "0",
                    "dealstage": "appointmentscheduled",
                    "handoff_owner_email": OWNER,
                    **dict.fromkeys(QUALIFY, "true"),
                }
            )
        )
        deal = str(created.id)
        s.until(deal, lambda st: st["stage"] == "close", timeout=90)  # no discount: no desk

        # the rep quotes two products; onboarding days go at 45% off
        to_deal = [PublicAssociationsForObject(to=PublicObjectId(id=deal), types=[LINE_TO_DEAL])]
        for props in (
            {"hs_product_id": "4001", "quantity": "2"},
            {"hs_product_id": "4002", "quantity": "2", "hs_discount_percentage": "45"},
        ):
            hs.crm.line_items.basic_api.create(LineInput(properties=props, associations=to_deal))
        hs.crm.deals.basic_api.update(
            deal, SimplePublicObjectInput(properties={"amount": "81650"})
        )  # the quote's net total

        st = s.until(deal, asked_cfo, timeout=90)
        assert st["owner"] == [CFO] and st["stage"] == "deal_desk"
        lines = {x["name"]: x for x in st["terms"]["lines"]}
        assert lines["Onboarding days"]["discount_percent"] == 45
        assert lines["Platform licence"]["unit_cost"] == 8000
        assert st["margin_source"] == "lines" and st["margin_percent"] == 78.2
        shown = s.handoff("status", deal).stdout
        assert "Onboarding days: 2 x 1,500.00, 45% off → 1,650.00; margin -9.1%" in shown
        assert "real margin 78.2% (from line costs)" in shown
        # what the README shows for this deal
        assert "Platform licence: 2 x 40,000.00, 0% off → 80,000.00; margin 80%" in shown
        assert (
            "round 1, tier line discount, margin 78.2% — a line is discounted more than 40%"
            in shown
        )

        # the CFO asks the rep first; the answer comes back to the CFO and into the CRM
        s.handoff("ask", deal, "--as", CFO, "--question", "Why 45% on onboarding?")
        st = s.until(deal, lambda st: st["waiting_on"] == "info_request")
        assert st["owner"] == [OWNER]
        refused = s.handoff("answer", deal, "--by", CFO, "--answer", "mine", check=False)
        assert refused.returncode != 0 and "deal owner" in refused.stdout + refused.stderr
        s.handoff("answer", deal, "--by", OWNER, "--answer", "They buy 3 sites next year")
        st = s.until(deal, lambda st: st["waiting_on"] == "discount_approval")
        assert st["owner"] == [CFO]
        wait_for(
            lambda: [n["hs_note_body"] for n in sandbox.activity(deal)["notes"]],
            lambda notes: any("Why 45% on onboarding?" in n and "3 sites" in n for n in notes),
            timeout=60,
        )

        s.handoff("approve", deal, "--as", CFO, "--reason", "Onboarding is a one-off")
        s.until(deal, lambda st: st["stage"] == "close", timeout=90)
        props = wait_for(
            lambda: (
                hs.crm.deals.basic_api.get_by_id(
                    deal, properties=["real_margin", "approved_discount"]
                ).properties
            ),
            lambda p: p.get("real_margin") == "78.2",
            timeout=60,
        )
        assert float(props["approved_discount"]) == pytest.approx(1.63, abs=0.01)


def test_a_rep_adds_a_45_percent_opportunity_product_in_salesforce_and_the_cfo_is_asked(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """An OpportunityLineItem through the REST API as the rep; the Amount roll-up reaches
    Handoff through the change feed, and the CFO is asked for the 45% line."""
    with salesforce_stack(dev_env, tmp_path) as (sandbox, s):
        rep = rep_headers(sandbox)  # not Handoff's user

        def product(code: str) -> str:
            q = format_soql("SELECT Id FROM Product2 WHERE ProductCode = {}", code)
            found = sandbox.rest("GET", f"{API}/query/", params={"q": q}).json()["records"]
            return str(found[0]["Id"])

        deal = create_opportunity(
            sandbox, rep, {"Name": "Hooli", "StageName": "Prospecting", "CloseDate": "2026-12-31"}
        )
        line = {"OpportunityId": deal, "Product2Id": product("PLAT-100"), "Quantity": 40,
                "UnitPrice": 1000, "Cost__c": 12000}  # fmt: skip
        r = sandbox.rest("POST", f"{API}/sobjects/OpportunityLineItem/", headers=rep, json=line)
        assert r.status_code == 201, r.text
        s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=90)
        s.qualify(deal, by=OWNER)
        s.until(deal, lambda st: st["stage"] == "close", timeout=90)

        # the rep adds onboarding at 45% off its 8,000 list price
        line = {"OpportunityId": deal, "Product2Id": product("ONB-200"), "Quantity": 1,
                "UnitPrice": 8000, "Discount": 45, "Cost__c": 2000}  # fmt: skip
        r = sandbox.rest("POST", f"{API}/sobjects/OpportunityLineItem/", headers=rep, json=line)
        assert r.status_code == 201, r.text

        st = s.until(deal, asked_cfo, timeout=90)
        assert st["owner"] == [CFO]
        lines = {x["name"]: x for x in st["terms"]["lines"]}
        assert lines["Onboarding package"]["discount_percent"] == 45
        # list 48,000, net 44,400; cost 14,000 → 68.5%
        assert st["margin_source"] == "lines" and st["margin_percent"] == 68.5
        shown = s.handoff("status", deal).stdout
        assert "Onboarding package: 1 x 8,000.00, 45% off → 4,400.00; margin 54.5%" in shown

        s.handoff("approve", deal, "--as", CFO, "--reason", "Strategic logo")
        s.until(deal, lambda st: st["stage"] == "close", timeout=90)
        written = wait_for(
            lambda: sandbox.rest("GET", f"{API}/sobjects/Opportunity/{deal}").json(),
            lambda o: o.get("Real_Margin__c") == 68.5,
            timeout=60,
        )
        assert written["Approved_Discount__c"] == pytest.approx(7.5)

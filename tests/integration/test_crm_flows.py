"""End to end against each CRM sandbox: a CRM change starts the handoff, the CLI walks it
to cash, and the sandbox holds every write exactly once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.handoffs import CONTRACT_FIELDS
from support.hubspot import create_deal, hubspot_stack, post_webhook
from support.processes import Stack
from support.salesforce import API, create_opportunity, rep_headers, salesforce_stack
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration

OWNER, MANAGER = "sam.rep@example.com", "maya.manager@example.com"
SECRET = "integration-app-secret"
COMPLETE = CONTRACT_FIELDS


def assert_each_write_once(activity: dict[str, Any], kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        keys = Counter(r.get("handoff_key") or r.get("Handoff_Key__c") for r in activity[kind])
        assert keys and all(n == 1 for n in keys.values()), (kind, keys)


def finish_with_cli(s: Stack, deal: str) -> dict[str, Any]:
    """From the deal desk to cash, as the people involved would do it."""
    s.until(deal, lambda st: st["pending_approval"] is not None, timeout=60)
    s.handoff("approve", deal, "--as", MANAGER, "--reason", "Within guidance")
    s.until(deal, lambda st: st["stage"] == "close")
    s.handoff("evidence", "add", deal, "contract_signed", "--by", OWNER)
    s.until(deal, lambda st: st["waiting_on"] == "acceptance")
    s.handoff("accept", deal, "operations", "--by", "olga.ops@example.com")
    s.handoff("evidence", "add", deal, "delivery_confirmed", "--by", "olga.ops@example.com")
    s.until(deal, lambda st: st["stage"] == "cash")
    s.handoff("evidence", "add", deal, "payment_received", "--by", "bill.billing@example.com")
    return s.until(deal, lambda st: st["done"])


def test_hubspot_webhook_to_cash(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A signed webhook starts the handoff, checkbox changes arrive as evidence (each
    delivered three times), the CLI approves; stage, notes, tasks and order land once."""
    with hubspot_stack(dev_env, tmp_path, app_secret=SECRET) as (sandbox, s, api):
        deal = create_deal(
            sandbox,
            "Umbrella rollout",
            amount="40000",
            discount_percent="20",
            owner=OWNER,
            **COMPLETE,
        )
        s.worker()
        s.spawn("api", ready="Application startup complete")
        base = {
            "subscriptionId": 1,
            "portalId": 62515,
            "appId": 54321,
            "attemptNumber": 0,
            "objectId": int(deal),
        }
        creation = {
            **base,
            "eventId": 100,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "deal.creation",
            "changeFlag": "NEW",
        }
        assert post_webhook(api, SECRET, [creation, creation]).status_code == 200
        s.until(deal, lambda st: st["waiting_on"] == "evidence")

        checks = [
            "need_confirmed",
            "budget_confirmed",
            "decision_maker_identified",
            "timeline_confirmed",
        ]
        sandbox.api(
            "PATCH",
            f"/crm/v3/objects/deals/{deal}",
            json={"properties": dict.fromkeys(checks, "true")},
        )
        events = [
            {
                **base,
                "eventId": 200 + i,
                "occurredAt": int(time.time() * 1000) + i,
                "subscriptionType": "deal.propertyChange",
                "propertyName": name,
                "propertyValue": "true",
            }
            for i, name in enumerate(checks)
        ]
        for _ in range(3):  # at-least-once delivery, out of order
            assert post_webhook(api, SECRET, list(reversed(events))).status_code == 200
        final = finish_with_cli(s, deal)
        activity = sandbox.activity(deal)

    by_crm = {e["kind"] for e in final["evidence"] if e["by"] == "hubspot@crm"}
    assert by_crm == {
        "need_confirmed",
        "budget_confirmed",
        "decision_maker_identified",
        "timeline_confirmed",
    }
    assert Counter(e["kind"] for e in final["evidence"]).most_common(1)[0][1] == 1
    assert activity["deal"]["dealstage"] == "closedwon"
    assert activity["deal"]["handoff_status"] == "complete"
    assert len(activity["orders"]) == 1
    assert_each_write_once(activity, ("notes", "tasks", "orders"))


def test_salesforce_change_to_cash(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A new Opportunity seen by the change feed starts the handoff; it ends in cash with
    the Opportunity closed won and each Task, Note and Order written once."""
    with salesforce_stack(dev_env, tmp_path) as (sandbox, s):
        rep = rep_headers(sandbox)  # not Handoff's user
        accounts = sandbox.rest("GET", f"{API}/query/", params={"q": "SELECT Id FROM Account"})
        account = accounts.json()["records"][0]["Id"]  # an Order needs the Account
        deal = create_opportunity(
            sandbox,
            rep,
            {
                "Name": "Hooli platform",
                "StageName": "Prospecting",
                "CloseDate": "2026-12-31",
                "Amount": 60000,
                "Discount_Percent__c": 20,
                "AccountId": account,
                "Scope__c": "HQ",
                "Start_Date__c": "2026-12-01",
                "Site_Notes__c": "Badge",
                "Primary_Contact__c": "gavin@hooli.example",
                "Promised__c": "Go-live Q1",
                "Billing_Contact__c": "ap@hooli.example",
                "PO_Number__c": "PO-9",
            },
        )
        s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=60)
        s.qualify(deal, by=OWNER)
        final = finish_with_cli(s, deal)
        activity = sandbox.activity(deal)

    assert final["done"]
    assert activity["opportunity"]["StageName"] == "Closed Won"
    assert len(activity["orders"]) == 1
    assert_each_write_once(activity, ("notes", "tasks", "orders"))

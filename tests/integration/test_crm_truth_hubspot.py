"""A rep edits the deal in HubSpot with hubspot-api-client, and Handoff reacts through
the sandbox's signed webhooks to the API. New terms are asked again with the new
figures; a deal closed lost by hand ends its handoff, every Handoff task on it is
completed, and the CRM still says lost afterwards (Salesforce: test_crm_truth_salesforce.py)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput
from support.crm_truth import (
    CONTRACT_BUT_SITE_NOTES,
    OWNER,
    QUALIFY,
    assert_nothing_left_to_write,
    wait_for,
)
from support.hubspot import TOKEN, hubspot_stack, post_webhook
from temporalio.testing import WorkflowEnvironment

from sandbox.common import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REP2 = "rita.rep@example.com"
SECRET = "crm-truth-app-secret"


def signed_webhook(api: str, deal: str, name: str, value: str, at_ms: int) -> httpx.Response:
    """One deal.propertyChange delivery, signed as HubSpot signs it."""
    event = {
        "eventId": uuid.uuid4().int % 10**9,
        "subscriptionId": 1,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": at_ms,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": int(deal),
        "propertyName": name,
        "propertyValue": value,
        "changeSource": "CRM_UI",
    }
    return post_webhook(api, SECRET, [event])


def test_a_rep_edits_a_hubspot_deal_and_handoff_follows(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Through hubspot-api-client: a new owner takes the wait and its task (a stale
    delivery of the old owner changes nothing); a new discount is asked again at 35%;
    closed lost ends the handoff, completes its tasks, and dealstage stays closedlost."""
    with hubspot_stack(dev_env, tmp_path, app_secret=SECRET, webhooks=True) as (sandbox, s, api):
        deals = HubSpot(access_token=TOKEN, host=sandbox.base).crm.deals.basic_api
        created = deals.create(
            SimplePublicObjectInput(
                properties={
                    "dealname": "Initrode renewal",
                    "amount": "50000",
                    "discount_percent": "12",
                    "dealstage": "appointmentscheduled",
                    "handoff_owner_email": OWNER,
                    **dict.fromkeys(QUALIFY[:3], "true"),
                }
            )
        )
        deal = str(created.id)
        s.until(deal, lambda st: st["waiting_for"] == "evidence: timeline_confirmed", timeout=60)

        # the deal changes hands: the qualify wait and its HubSpot task move to Rita
        deals.update(deal, SimplePublicObjectInput(properties={"handoff_owner_email": REP2}))
        s.until(deal, lambda st: st["owner"] == [REP2])
        moved = wait_for(
            lambda: sandbox.activity(deal)["tasks"],
            lambda ts: ts and all(t.get("handoff_owner_email") == REP2 for t in ts),
        )
        assert moved
        # a late, stale delivery of the old owner (an hour older) changes nothing
        stale = int(time.time() * 1000) - 3_600_000
        late = signed_webhook(api, deal, "handoff_owner_email", OWNER, stale)
        assert late.status_code == 200, late.text
        time.sleep(2)
        assert s.status(deal)["owner"] == [REP2]

        deals.update(deal, SimplePublicObjectInput(properties={"timeline_confirmed": "true"}))
        st = s.until(deal, lambda st: st["pending_approval"] is not None, timeout=60)
        assert st["pending_approval"]["discount_percent"] == 12

        deals.update(deal, SimplePublicObjectInput(properties={"discount_percent": "35"}))
        st = s.until(deal, lambda st: (st["pending_approval"] or {}).get("discount_percent") == 35)
        assert st["terms"]["discount_percent"] == 35

        deals.update(deal, SimplePublicObjectInput(properties={"dealstage": "closedlost"}))
        st = s.until(deal, lambda st: st["done"], timeout=60)
        assert st["outcome"] == "lost"
        tasks = wait_for(
            lambda: sandbox.activity(deal)["tasks"],
            lambda ts: ts and all(t.get("hs_task_status") == "COMPLETED" for t in ts),
        )
        assert tasks
        # "a minute later": its run is closed with no activity in flight, so nothing of
        # Handoff's can write to the deal any more, and nothing did since the rep's edit
        assert_nothing_left_to_write(s, f"lead-to-cash-hubspot-{deal}")
        final = deals.get_by_id(
            deal, properties=["dealstage"], properties_with_history=["dealstage"]
        )
        assert final.properties["dealstage"] == "closedlost"
        lost = final.properties_with_history["dealstage"][0]  # newest first
        assert lost.value == "closedlost"
        assert final.updated_at == lost.timestamp  # no write to the deal after the rep's

        # the rep re-opens it: a new handoff starts, linked to the lost one
        deals.update(
            deal, SimplePublicObjectInput(properties={"dealstage": "appointmentscheduled"})
        )
        st = s.until(deal, lambda st: not st["done"] and st["stage"] in ("qualify", "deal_desk"))
        linked = [h["detail"] for h in st["history"] if h["kind"] == "started"]
        assert any(f"continues lead-to-cash-hubspot-{deal}/" in d for d in linked), linked


def test_a_late_hubspot_webhook_never_fills_an_empty_contract_field(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The sandbox's delivery of site_notes = "Dock 4" fails (the API is unreachable) and
    is retried after the rep has emptied the field again, so it arrives last: the sales →
    ops contract stays shut while the CRM field is empty, and opens on a real value."""
    with hubspot_stack(dev_env, tmp_path, app_secret=SECRET, webhooks=True) as (sandbox, s, api):
        deals = HubSpot(access_token=TOKEN, host=sandbox.base).crm.deals.basic_api
        created = deals.create(
            SimplePublicObjectInput(
                properties={
                    "dealname": "Umbrella fit-out",
                    "amount": "40000",
                    "discount_percent": "0",
                    "dealstage": "appointmentscheduled",
                    "handoff_owner_email": OWNER,
                    **dict.fromkeys(QUALIFY, "true"),
                    **CONTRACT_BUT_SITE_NOTES,
                }
            )
        )
        deal = str(created.id)
        s.until(deal, lambda st: st["stage"] == "close", timeout=60)
        s.handoff("evidence", "add", deal, "contract_signed", "--by", OWNER)
        s.until(deal, lambda st: st["missing_fields"] == ["site_notes"], timeout=60)

        def webhooks() -> dict[str, Any]:
            result: dict[str, Any] = sandbox.control("GET", "webhooks")
            return result

        target = f"{api}/webhooks/hubspot"
        subscription = {"client_secret": SECRET, "linger_ms": 50, "retry_base_ms": 4000}
        unreachable = f"http://127.0.0.1:{free_port()}/webhooks/hubspot"
        sandbox.control("POST", "webhooks/subscribe", {**subscription, "target_url": unreachable})
        deals.update(deal, SimplePublicObjectInput(properties={"site_notes": "Dock 4"}))
        wait_for(webhooks, lambda w: w["failed_attempts"] == 1 and w["pending"] >= 1)
        sandbox.control("POST", "webhooks/subscribe", {**subscription, "target_url": target})
        delivered = webhooks()["delivered_events"]
        deals.update(deal, SimplePublicObjectInput(properties={"site_notes": ""}))
        # the emptied value is delivered while the older one still waits for its retry
        wait_for(webhooks, lambda w: w["delivered_events"] > delivered and w["pending"] >= 1)
        after = wait_for(webhooks, lambda w: w["pending"] == 0, timeout=20)
        assert after["failed_attempts"] == 1 and after["dropped_events"] == 0, after

        assert deals.get_by_id(deal, properties=["site_notes"]).properties["site_notes"] in (
            "",
            None,
        )
        st = s.status(deal)
        assert st is not None
        assert st["waiting_on"] == "handoff_fields" and st["missing_fields"] == ["site_notes"], st

        deals.update(deal, SimplePublicObjectInput(properties={"site_notes": "Dock 9"}))
        s.until(deal, lambda st: st["waiting_on"] == "acceptance")

"""A rep edits the deal in the CRM with the CRM's own client, and Handoff reacts: on the
HubSpot sandbox through its signed webhooks to the API, on the Salesforce sandbox through
the change feed. New terms are asked again with the new figures; a deal closed lost by
hand ends its handoff, every Handoff task on it is completed, and the CRM still says
lost afterwards."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput
from hubspot_fixtures import TOKEN, run_with_webhooks, running_sandbox, store_with_unique_ids
from hubspot_fixtures import stack_env as hubspot_stack_env
from salesforce_fixtures import API, sales_rep_session, stack_env
from salesforce_fixtures import running_sandbox as running_salesforce
from salesforce_fixtures import store_with_unique_ids as salesforce_store
from support.processes import stack
from temporalio.testing import WorkflowEnvironment

from sandbox.common import free_port
from worker.http.ingress.hubspot import sign_v3

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OWNER, REP2 = "sam.rep@example.com", "rita.rep@example.com"
SF_REP2 = "sol.salesops@example.com"  # a second user of the sandbox org
SECRET = "crm-truth-app-secret"
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")


def signed_webhook(api: str, deal: str, name: str, value: str, at_ms: int) -> httpx.Response:
    """One deal.propertyChange delivery, signed as HubSpot signs it."""
    body = json.dumps(
        [
            {
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
        ]
    )
    stamp = str(int(time.time() * 1000))
    uri = f"{api}/webhooks/hubspot"
    headers = {
        "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", uri, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return httpx.post(uri, content=body, headers=headers, timeout=10)


def user_id(sandbox: Any, email: str) -> str:
    """The org's User with this email, as the rep's admin would look it up."""
    soql = f"SELECT Id FROM User WHERE Email = '{email}'"  # noqa: S608 - a test constant
    rows = sandbox.rest("GET", f"{API}/query/", params={"q": soql}).json()["records"]
    return str(rows[0]["Id"])


def open_tasks(sandbox: Any, deal: str) -> list[dict[str, Any]]:
    """Handoff's Tasks on the Opportunity that are not completed."""
    tasks = sandbox.activity(deal)["tasks"]
    return [t for t in tasks if t.get("Handoff_Key__c") and t["Status"] != "Completed"]


def wait_for(read: Any, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not check(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.3)
    return value


def test_a_rep_edits_a_hubspot_deal_and_handoff_follows(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Through hubspot-api-client: a new owner takes the wait and its task (a stale
    delivery of the old owner changes nothing); a new discount is asked again at 35%;
    closed lost ends the handoff, completes its tasks, and dealstage stays closedlost."""
    address = dev_env.client.service_client.config.target_host
    port = free_port()
    api = f"http://127.0.0.1:{port}"
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
        time.sleep(3)  # nothing comes back to re-open it
        final = deals.get_by_id(deal, properties=["dealstage"])
        assert final.properties["dealstage"] == "closedlost"

        # the rep re-opens it: a new handoff starts, linked to the lost one
        deals.update(
            deal, SimplePublicObjectInput(properties={"dealstage": "appointmentscheduled"})
        )
        st = s.until(deal, lambda st: not st["done"] and st["stage"] in ("qualify", "deal_desk"))
        linked = [h["detail"] for h in st["history"] if h["kind"] == "started"]
        assert any(f"continues lead-to-cash-hubspot-{deal}/" in d for d in linked), linked


def test_a_rep_edits_a_salesforce_opportunity_and_handoff_follows(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Through the REST API as the rep's own user: a new OwnerId takes the wait and its
    open Task; a new discount is asked again; Closed Lost ends the handoff, completes its
    Tasks, and the Opportunity stays Closed Lost."""
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
        rep = {"Authorization": f"Bearer {sales_rep_session(sandbox)}"}  # not Handoff's user
        opp = sandbox.rest(
            "POST",
            f"{API}/sobjects/Opportunity/",
            headers=rep,
            json={
                "Name": "Pied Piper",
                "StageName": "Prospecting",
                "CloseDate": "2026-12-31",
                "Amount": 60000,
                "Discount_Percent__c": 18,
            },
        )
        assert opp.status_code == 201, opp.text
        deal = opp.json()["id"]
        s.until(deal, lambda st: st["waiting_on"] == "evidence", timeout=60)
        sam, sol = user_id(sandbox, OWNER), user_id(sandbox, SF_REP2)
        wait_for(lambda: open_tasks(sandbox, deal), lambda ts: ts and ts[0]["OwnerId"] == sam)

        # the rep hands the Opportunity to Sol: the qualify wait and its open Task move
        handed = sandbox.rest(
            "PATCH", f"{API}/sobjects/Opportunity/{deal}", headers=rep, json={"OwnerId": sol}
        )
        assert handed.status_code == 204, handed.text
        s.until(deal, lambda st: st["owner"] == [SF_REP2], timeout=60)
        moved = wait_for(
            lambda: open_tasks(sandbox, deal),
            lambda ts: ts and all(t["OwnerId"] == sol for t in ts),
        )
        assert [t["Subject"].split(":")[0] for t in moved] == ["Qualify the deal"]
        for kind in QUALIFY:
            s.handoff("evidence", "add", deal, kind, "--by", OWNER)
        s.until(deal, lambda st: st["pending_approval"] is not None)

        edit = sandbox.rest(
            "PATCH",
            f"{API}/sobjects/Opportunity/{deal}",
            headers=rep,
            json={"Discount_Percent__c": 45},
        )
        assert edit.status_code == 204, edit.text
        st = s.until(deal, lambda st: (st["pending_approval"] or {}).get("discount_percent") == 45)
        assert st["terms"]["discount_percent"] == 45

        lost = sandbox.rest(
            "PATCH",
            f"{API}/sobjects/Opportunity/{deal}",
            headers=rep,
            json={"StageName": "Closed Lost"},
        )
        assert lost.status_code == 204, lost.text
        st = s.until(deal, lambda st: st["done"], timeout=60)
        assert st["outcome"] == "lost"
        tasks = wait_for(
            lambda: [r for r in sandbox.activity(deal)["tasks"] if r.get("Handoff_Key__c")],
            lambda ts: ts and all(t["Status"] == "Completed" for t in ts),
        )
        assert tasks
        time.sleep(3)
        stage = sandbox.rest("GET", f"{API}/sobjects/Opportunity/{deal}").json()["StageName"]
        assert stage == "Closed Lost"

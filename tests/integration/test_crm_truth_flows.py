"""A rep edits the deal in the CRM with the CRM's own client, and Handoff reacts: on the
HubSpot sandbox through its signed webhooks to the API, on the Salesforce sandbox through
the change feed. New terms are asked again with the new figures; a deal closed lost by
hand ends its handoff, every Handoff task on it is completed, and the CRM still says
lost afterwards."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput
from support.handoffs import until
from support.hubspot import TOKEN, run_with_webhooks, running_sandbox, store_with_unique_ids
from support.hubspot import stack_env as hubspot_stack_env
from support.processes import Stack, stack
from support.salesforce import API, auth_for, connector_for, sales_rep_session, stack_env
from support.salesforce import running_sandbox as running_salesforce
from support.salesforce import store_with_unique_ids as salesforce_store
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from sandbox.common import free_port
from worker.http.ingress.hubspot import sign_v3
from worker.http.ingress.temporal_starter import TemporalStarter
from worker.processes.worker import build_worker
from workflows import names
from workflows.change_feed import ChangeFeed, ChangeFeedInput
from workflows.names import Msg, WaitingOn
from workflows.policy import default_policy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OWNER, REP2 = "sam.rep@example.com", "rita.rep@example.com"
SF_REP2 = "sol.salesops@example.com"  # a second user of the sandbox org
SECRET = "crm-truth-app-secret"
#: Every field the sales → ops contract needs, except site_notes.
CONTRACT_BUT_SITE_NOTES = {
    "scope": "Two floors",
    "start_date": "2026-12-01",
    "primary_contact": "ada@umbrella.example",
    "promised": "Keys on day one",
}
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


ACTIVITY_SCHEDULED = "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
#: The events that end a scheduled activity (its last attempt finished).
ACTIVITY_ENDED = {
    f"EVENT_TYPE_ACTIVITY_TASK_{end}" for end in ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELED")
}


def assert_nothing_left_to_write(s: Stack, workflow_id: str) -> None:
    """The handoff's latest run is closed, and every activity it scheduled ended before
    it closed: no Handoff code is left that could write to the deal (only a handoff's own
    activities write to it; the webhook ingress and the change feed only signal)."""
    shown = s.temporal("workflow", "show", "--workflow-id", workflow_id, "--output", "json")
    events = json.loads(shown.stdout)["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", events[-1]
    scheduled = {e["eventId"] for e in events if e["eventType"] == ACTIVITY_SCHEDULED}
    ended = {
        attrs["scheduledEventId"]
        for e in events
        if e["eventType"] in ACTIVITY_ENDED
        for attrs in [next(v for k, v in e.items() if k.endswith("EventAttributes"))]
    }
    assert scheduled and scheduled == ended, (scheduled, ended)


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
    address = dev_env.client.service_client.config.target_host
    port = free_port()
    with (
        running_sandbox(store_with_unique_ids(tmp_path / "hubspot.sqlite3")) as sandbox,
        stack(address, tmp_path, extra_env=hubspot_stack_env(sandbox, port, SECRET)) as s,
    ):
        run_with_webhooks(s, sandbox, port, SECRET)
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

        target = f"http://127.0.0.1:{port}/webhooks/hubspot"
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


def test_a_rep_edits_a_salesforce_opportunity_and_handoff_follows(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Through the REST API as the rep's own user: a new OwnerId takes the wait and its
    open Task; a new discount is asked again; Closed Lost ends the handoff (the audit
    trail names the rep), completes its Tasks, and the Opportunity stays Closed Lost."""
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
        # the audit trail names the rep's Salesforce user (LastModifiedById), not the CRM
        ended = [h["by"] for h in st["history"] if "handoff ends as lost" in h["detail"]]
        assert ended == [OWNER], st["history"]
        tasks = wait_for(
            lambda: [r for r in sandbox.activity(deal)["tasks"] if r.get("Handoff_Key__c")],
            lambda ts: ts and all(t["Status"] == "Completed" for t in ts),
        )
        assert tasks
        # "a minute later": its run is closed with no activity in flight, so nothing of
        # Handoff's can write to the Opportunity any more, and nothing did since the rep's
        assert_nothing_left_to_write(s, f"lead-to-cash-salesforce-{deal}")
        final = sandbox.rest("GET", f"{API}/sobjects/Opportunity/{deal}").json()
        assert final["StageName"] == "Closed Lost"
        assert final["LastModifiedById"] == sam, final  # the rep's edit is the last write


async def started(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


class HeldPage:
    """The feed's sink (signals through `TemporalStarter`) that holds the first change
    carrying site_notes = `value` until released: a page dispatched late, as a retried
    dispatch activity delivers the page it read before."""

    def __init__(self, starter: TemporalStarter, value: str) -> None:
        self.starter, self.value = starter, value
        self.held, self.release, self.delivered = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        await self.starter.deal_entered_trigger(crm, deal_id, event_id)

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        await self.starter.evidence_arrived(crm, deal_id, kind, event_id)

    async def deal_changed(
        self,
        crm: str,
        deal_id: str,
        fields: dict[str, str],
        event_id: str,
        occurred_at: datetime | None = None,
        changed_by: str | None = None,
    ) -> None:
        late = fields.get("site_notes") == self.value and not self.held.is_set()
        if late:
            self.held.set()
            await self.release.wait()
        await self.starter.deal_changed(crm, deal_id, fields, event_id, occurred_at, changed_by)
        if late:
            self.delivered.set()


async def test_a_late_salesforce_feed_page_never_fills_an_empty_contract_field(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The feed reads Site_Notes__c = "Dock 4" and its page is dispatched late, after the
    rep emptied the field: the feed re-reads current values, but a page in flight is as
    old as its read. The handoff checks the record before the contract passes, so it
    stays shut while the field is empty, and opens once the rep really fills it."""
    client, policy, tq = dev_env.client, default_policy(), f"tq-{uuid.uuid4()}"
    with running_salesforce(tmp_path, salesforce_store(tmp_path / "org.sqlite3")) as sandbox:
        connector = connector_for(sandbox, auth_for(sandbox, "client_credentials"))
        sink = HeldPage(TemporalStarter(client, policy, tq), "Dock 4")
        rep = {"Authorization": f"Bearer {sales_rep_session(sandbox)}"}

        def rep_sets(**fields: Any) -> None:
            edit = sandbox.rest(
                "PATCH", f"{API}/sobjects/Opportunity/{deal}", headers=rep, json=fields
            )
            assert edit.status_code == 204, edit.text

        async with build_worker(client, task_queue=tq, connector=connector, events=sink):
            feed = await client.start_workflow(
                ChangeFeed.run,
                ChangeFeedInput(crm="salesforce", policy=policy, poll_every_s=0.5),
                id=f"feed-{uuid.uuid4()}",
                task_queue=tq,
            )
            opp = sandbox.rest(
                "POST",
                f"{API}/sobjects/Opportunity/",
                headers=rep,
                json={
                    "Name": "Hooli depot",
                    "StageName": "Prospecting",
                    "CloseDate": "2026-12-31",
                    "Amount": 40000,
                    "Discount_Percent__c": 0,
                    **{f"{k.title()}__c": True for k in QUALIFY},
                    **{f"{k.title()}__c": v for k, v in CONTRACT_BUT_SITE_NOTES.items()},
                },
            )
            assert opp.status_code == 201, opp.text
            deal = opp.json()["id"]
            handle = client.get_workflow_handle(names.lead_to_cash_id("salesforce", deal))
            deadline = time.monotonic() + 60
            while not await started(handle):  # the feed starts it on its next poll
                assert time.monotonic() < deadline, "the feed never started the handoff"
                await asyncio.sleep(0.3)
            await until(handle, lambda st: st.stage == "close", timeout=60)
            await handle.signal(Msg.ADD_EVIDENCE, {"kind": "contract_signed", "by": OWNER})
            await until(handle, lambda st: st.missing_fields == ["site_notes"], timeout=60)

            rep_sets(Site_Notes__c="Dock 4")
            await asyncio.wait_for(sink.held.wait(), timeout=30)  # its page is in flight
            rep_sets(Site_Notes__c=None)
            sink.release.set()
            await asyncio.wait_for(sink.delivered.wait(), timeout=30)  # the late page is in
            st = await until(  # its handling done: it read the record before deciding
                handle,
                lambda st: (
                    st.waiting_on != WaitingOn.HANDOFF_FIELDS
                    or any("empty in the CRM" in h.detail for h in st.history)
                ),
            )
            assert st.waiting_on == WaitingOn.HANDOFF_FIELDS, st.waiting_on
            assert st.missing_fields == ["site_notes"]

            rep_sets(Site_Notes__c="Dock 9")
            await until(handle, lambda st: st.waiting_on == WaitingOn.ACCEPTANCE, timeout=30)
            await handle.terminate("test finished")
            await feed.terminate("test finished")

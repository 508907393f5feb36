"""A rep edits the Opportunity in Salesforce as the rep's own user, and Handoff reacts
through the change feed. New terms are asked again with the new figures; a deal closed
lost by hand ends its handoff, every Handoff task on it is completed, and the CRM still
says lost afterwards (HubSpot: test_crm_truth_hubspot.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.crm_truth import (
    CONTRACT_BUT_SITE_NOTES,
    OWNER,
    QUALIFY,
    assert_nothing_left_to_write,
    wait_for,
)
from support.handoffs import until
from support.salesforce import (
    API,
    auth_for,
    connector_for,
    create_opportunity,
    rep_headers,
    salesforce_stack,
)
from support.salesforce import running_sandbox as running_salesforce
from support.salesforce import store_with_unique_ids as salesforce_store
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from worker.http.ingress.temporal_starter import TemporalStarter
from worker.processes.worker import build_worker
from workflows import names
from workflows.change_feed import ChangeFeed, ChangeFeedInput
from workflows.names import Msg, WaitingOn
from workflows.policy import default_policy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SF_REP2 = "sol.salesops@example.com"  # a second user of the sandbox org


def user_id(sandbox: Any, email: str) -> str:
    """The org's User with this email, as the rep's admin would look it up."""
    soql = f"SELECT Id FROM User WHERE Email = '{email}'"  # noqa: S608 - a test constant
    rows = sandbox.rest("GET", f"{API}/query/", params={"q": soql}).json()["records"]
    return str(rows[0]["Id"])


def open_tasks(sandbox: Any, deal: str) -> list[dict[str, Any]]:
    """Handoff's Tasks on the Opportunity that are not completed."""
    tasks = sandbox.activity(deal)["tasks"]
    return [t for t in tasks if t.get("Handoff_Key__c") and t["Status"] != "Completed"]


def test_a_rep_edits_a_salesforce_opportunity_and_handoff_follows(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Through the REST API as the rep's own user: a new OwnerId takes the wait and its
    open Task; a new discount is asked again; Closed Lost ends the handoff (the audit
    trail names the rep), completes its Tasks, and the Opportunity stays Closed Lost."""
    with salesforce_stack(dev_env, tmp_path) as (sandbox, s):
        rep = rep_headers(sandbox)  # not Handoff's user
        deal = create_opportunity(
            sandbox,
            rep,
            {
                "Name": "Pied Piper",
                "StageName": "Prospecting",
                "CloseDate": "2026-12-31",
                "Amount": 60000,
                "Discount_Percent__c": 18,
            },
        )
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
        s.qualify(deal, by=OWNER)
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
        rep = rep_headers(sandbox)

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
            deal = create_opportunity(
                sandbox,
                rep,
                {
                    "Name": "Hooli depot",
                    "StageName": "Prospecting",
                    "CloseDate": "2026-12-31",
                    "Amount": 40000,
                    "Discount_Percent__c": 0,
                    **{f"{k.title()}__c": True for k in QUALIFY},
                    **{f"{k.title()}__c": v for k, v in CONTRACT_BUT_SITE_NOTES.items()},
                },
            )
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

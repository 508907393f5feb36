"""Salesforce write-back against the TLS sandbox with simple-salesforce: a rep's edit is
never overwritten (If-Unmodified-Since, 412), tasks Handoff opened are completed and
moved, and one composite request per write-back."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql
from support.lead_to_cash_writes import OPS, REP, lead_to_cash_writes
from support.salesforce import Sandbox, connector_fixtures, rep_opportunity

from connectors.base import NoteSpec, TaskSpec, WriteBack
from connectors.salesforce import SalesforceConnector

COMPOSITE = "POST /services/data/v{ver}/composite"
QUERY = "GET /services/data/v{ver}/query"


server, sandbox, connector, rep = connector_fixtures("sf-writeback")


@pytest.fixture
def deal(rep: Salesforce) -> str:
    """A fresh Opportunity of the rep's (30% discount, Prospecting)."""
    return rep_opportunity(rep, Discount_Percent__c=30.0)


def opportunity(rep: Salesforce, deal_id: str) -> dict[str, Any]:
    record: dict[str, Any] = rep.Opportunity.get(deal_id)
    return record


def tasks(rep: Salesforce, deal_id: str) -> dict[str, dict[str, Any]]:
    soql = format_soql(
        "SELECT Id, Status, OwnerId, Handoff_Key__c FROM Task WHERE WhatId = {}", deal_id
    )
    return {str(r["Handoff_Key__c"]): r for r in rep.query(soql)["records"]}


def user_id(rep: Salesforce, email: str) -> str:
    soql = format_soql("SELECT Id FROM User WHERE Email = {}", email)
    return str(rep.query(soql)["records"][0]["Id"])


def calls(sandbox: Sandbox) -> dict[str, int]:
    stats: dict[str, int] = sandbox.control("GET", "stats")
    sandbox.control("POST", "stats/reset")
    return stats


# -- 1. compare before overwrite ---------------------------------------------------------
def test_a_field_the_rep_changed_since_handoff_read_it_is_left_and_reported(
    connector: SalesforceConnector, rep: Salesforce, deal: str, sandbox: Sandbox
) -> None:
    """The rep moves the discount from 30 to 18 after Handoff read the deal: it stays 18,
    is reported, and the other fields are written in the same composite request."""
    seen = connector.get_deal(deal)
    rep.Opportunity.update(deal, {"Discount_Percent__c": 18})
    calls(sandbox)
    receipt = connector.write_back(
        WriteBack(
            deal_id=deal,
            key="wb-terms",
            fields={"discount_percent": 30, "crm_stage": "negotiation", "handoff_stage": "close"},
            expected={"discount_percent": str(seen.discount_percent), "crm_stage": seen.crm_stage},
        )
    )
    assert {k: float(v or 0) for k, v in receipt.conflicts.items()} == {"discount_percent": 18}
    assert calls(sandbox)[COMPOSITE] == 2  # the compare read, then the write
    now = opportunity(rep, deal)
    assert (now["Discount_Percent__c"], now["StageName"], now["Handoff_Stage__c"]) == (
        18,
        "Negotiation/Review",
        "close",
    )


def test_an_edit_between_the_read_and_the_write_is_caught_by_412(
    connector: SalesforceConnector, rep: Salesforce, deal: str, sandbox: Sandbox
) -> None:
    """The rep saves the deal just after Handoff's compare read: the conditional PATCH
    gets 412, nothing of that request lands, the deal is read again and the rep's value
    is reported instead of overwritten."""
    fired: list[bool] = []

    def rep_edits_after_the_read(response: requests.Response, *_: Any, **__: Any) -> None:
        body = response.request.body or b""
        text = body.decode() if isinstance(body, bytes) else str(body)
        if fired or not response.request.url or not response.request.url.endswith("/composite"):
            return
        if '"allOrNone": false' in text:
            fired.append(True)
            time.sleep(1.05)  # If-Unmodified-Since has one-second precision
            rep.Opportunity.update(deal, {"Discount_Percent__c": 45})

    connector._session.hooks["response"].append(rep_edits_after_the_read)
    calls(sandbox)
    receipt = connector.write_back(
        WriteBack(
            deal_id=deal,
            key="wb-race",
            fields={"discount_percent": 25, "handoff_stage": "deal_desk"},
            expected={"discount_percent": "30.0"},
            tasks=[TaskSpec(subject="Approve", owner_email=REP, key="t-race")],
        )
    )
    assert fired
    assert {k: float(v or 0) for k, v in receipt.conflicts.items()} == {"discount_percent": 45}
    # read, write (412, rolled back), read again, write
    assert calls(sandbox)[COMPOSITE] == 4
    now = opportunity(rep, deal)
    assert (now["Discount_Percent__c"], now["Handoff_Stage__c"]) == (45, "deal_desk")
    assert list(tasks(rep, deal)) == ["t-race"]


def test_a_retried_write_back_is_not_a_conflict_with_itself(
    connector: SalesforceConnector, rep: Salesforce, deal: str
) -> None:
    """Run twice (its first answer lost): the CRM then holds Handoff's own new value,
    which is no conflict."""
    batch = WriteBack(
        deal_id=deal,
        key="wb-again",
        fields={"crm_stage": "qualified"},
        expected={"crm_stage": "new"},
    )
    assert connector.write_back(batch).conflicts == {}
    assert connector.write_back(batch).conflicts == {}
    assert opportunity(rep, deal)["StageName"] == "Qualification"


def test_a_rep_who_closed_the_deal_lost_is_not_reopened(
    connector: SalesforceConnector, rep: Salesforce, deal: str
) -> None:
    """Closed Lost by hand stays Closed Lost: the stage is a conflict, never forced."""
    rep.Opportunity.update(deal, {"StageName": "Closed Lost"})
    receipt = connector.write_back(
        WriteBack(
            deal_id=deal,
            key="wb-lost",
            fields={"crm_stage": "negotiation"},
            expected={"crm_stage": "new"},
        )
    )
    assert receipt.conflicts == {"crm_stage": "closed_lost"}
    assert opportunity(rep, deal)["StageName"] == "Closed Lost"


# -- 2. close and move what Handoff opened -------------------------------------------------
def test_tasks_handoff_opened_are_completed_and_reassigned(
    connector: SalesforceConnector, rep: Salesforce, deal: str, sandbox: Sandbox
) -> None:
    """Tasks get OwnerId from the owner's email; one is completed, one moved to ops, an
    unknown key is ignored, and repeating it changes nothing."""
    opened = connector.write_back(
        WriteBack(
            deal_id=deal,
            key="wb-open",
            tasks=[
                TaskSpec(subject="Sign", owner_email=REP, key="t-sign"),
                TaskSpec(subject="Scope", owner_email=REP, key="t-scope"),
            ],
        )
    )
    sign, scope = opened.task_ids
    before = tasks(rep, deal)
    assert {t["OwnerId"] for t in before.values()} == {user_id(rep, REP)}
    calls(sandbox)
    settle = WriteBack(
        deal_id=deal,
        key="wb-settle",
        complete_tasks=["t-sign", "t-nobody"],
        reassign_tasks={"t-scope": OPS},
    )
    receipt = connector.write_back(settle)
    assert receipt.completed_task_ids == [sign]
    stats = calls(sandbox)
    assert stats[COMPOSITE] == 2  # the task query, then the updates
    after = tasks(rep, deal)
    assert after["t-sign"]["Status"] == "Completed"
    assert (after["t-scope"]["Id"], after["t-scope"]["Status"]) == (scope, "Not Started")
    assert after["t-scope"]["OwnerId"] == user_id(rep, OPS)
    assert connector.write_back(settle).completed_task_ids == []
    assert tasks(rep, deal) == after


def test_nothing_to_do_costs_no_call(
    connector: SalesforceConnector, deal: str, sandbox: Sandbox
) -> None:
    """An empty write-back (no fields, entries, completions or moves) sends nothing."""
    connector.get_deal(deal)  # logged in
    calls(sandbox)
    connector.write_back(WriteBack(deal_id=deal, key="wb-nothing", complete_tasks=[]))
    assert sum(calls(sandbox).values()) == 0


# -- 3. the calls of one handoff -----------------------------------------------------------
def test_a_lead_to_cash_handoff_is_one_composite_per_write_back_and_a_replay_creates_nothing(
    connector: SalesforceConnector, rep: Salesforce, deal: str, sandbox: Sandbox
) -> None:
    """Seven write-backs: seven composite requests, plus the login and one query for
    every active User (task owners' OwnerId); every write-back run again adds nothing."""
    calls(sandbox)
    writes = lead_to_cash_writes(deal, f"lead-to-cash-salesforce-{deal}")
    receipts = [connector.write_back(b) for b in writes]
    stats = calls(sandbox)
    assert (stats[COMPOSITE], stats[QUERY]) == (7, 1)
    assert sum(stats.values()) == 9  # with the login
    replayed = [connector.write_back(b) for b in writes]
    # the same records; LastModifiedDate (whole seconds) may have moved on since
    assert [r.model_dump(exclude={"modified_at"}) for r in replayed] == [
        r.model_dump(exclude={"modified_at"}) for r in receipts
    ]
    assert sum(calls(sandbox).values()) == 7
    entries = tasks(rep, deal)
    assert len(entries) == 12
    assert sorted(t["Id"] for t in entries.values()) == sorted(
        i for r in receipts for i in r.note_ids + r.task_ids
    )
    assert opportunity(rep, deal)["Handoff_Stage__c"] == "done"


def test_more_than_25_writes_go_out_in_as_many_composites_as_needed(
    connector: SalesforceConnector, rep: Salesforce, deal: str, sandbox: Sandbox
) -> None:
    """A composite takes 25 subrequests: the fields and 30 notes are two requests, and
    every note lands once."""
    connector.get_deal(deal)  # logged in, users known
    calls(sandbox)
    receipt = connector.write_back(
        WriteBack(
            deal_id=deal,
            key="wb-many",
            fields={"handoff_stage": "delivery"},
            notes=[NoteSpec(body=f"evidence {i}", key=f"n-many-{i}") for i in range(30)],
        )
    )
    assert calls(sandbox)[COMPOSITE] == 2
    assert len(set(receipt.note_ids)) == 30
    assert sorted(tasks(rep, deal)) == sorted(f"n-many-{i}" for i in range(30))

"""HubSpot write-back against the sandbox with hubspot-api-client: never overwrite a rep's
edit, close and move the tasks Handoff opened, and the calls one handoff costs."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects import SimplePublicObjectInput
from support.hubspot import (
    CREATE,
    GET,
    OWNERS,
    PATCH,
    READ,
    TOKEN,
    UPDATE,
    HubSpotSandbox,
    connector_fixtures,
)
from support.lead_to_cash_writes import BILLING, OPS, REP, lead_to_cash_writes

from connectors.base import TaskSpec, WriteBack
from connectors.errors import Rejected
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_batching import together

sandbox, hs = connector_fixtures()


@pytest.fixture
def rep(sandbox: HubSpotSandbox) -> HubSpot:
    """A sales rep's own hubspot-api-client, editing the portal beside Handoff."""
    return HubSpot(access_token=TOKEN, host=sandbox.base)


def deal(rep: HubSpot, deal_id: str, *names: str) -> dict[str, Any]:
    props: dict[str, Any] = rep.crm.deals.basic_api.get_by_id(
        deal_id, properties=list(names)
    ).properties
    return props


def task(rep: HubSpot, task_id: str) -> dict[str, Any]:
    names = ["hs_task_status", "hubspot_owner_id", "handoff_owner_email", "handoff_key"]
    props: dict[str, Any] = rep.crm.objects.tasks.basic_api.get_by_id(
        task_id, properties=names
    ).properties
    return props


def owner_id(rep: HubSpot, email: str) -> str:
    return str(rep.crm.owners.owners_api.get_page(email=email).results[0].id)


def calls(sandbox: HubSpotSandbox) -> dict[str, int]:
    stats = sandbox.stats()
    sandbox.control("POST", "stats/reset")
    return stats


# -- 1. compare before overwrite ---------------------------------------------------------
def test_a_field_the_rep_changed_since_handoff_read_it_is_left_and_reported(
    hs: HubSpotConnector, rep: HubSpot, sandbox: HubSpotSandbox
) -> None:
    """The rep moves the discount from 30 to 35 after Handoff read the deal: Handoff's
    write keeps 35, reports it, and still writes the fields nobody touched."""
    seen = hs.get_deal("1001")
    rep.crm.deals.basic_api.update(
        "1001", SimplePublicObjectInput(properties={"discount_percent": "35"})
    )
    calls(sandbox)
    receipt = hs.write_back(
        WriteBack(
            deal_id="1001",
            key="wb-terms",
            fields={"discount_percent": 30, "crm_stage": "negotiation", "handoff_stage": "close"},
            expected={"discount_percent": str(seen.discount_percent), "crm_stage": seen.crm_stage},
        )
    )
    assert receipt.conflicts == {"discount_percent": "35"}
    stats = calls(sandbox)
    assert (stats[GET], stats[PATCH], stats["total"]) == (1, 1, 2)
    now = deal(rep, "1001", "discount_percent", "dealstage", "handoff_stage")
    assert (now["discount_percent"], now["dealstage"], now["handoff_stage"]) == (
        "35",
        "presentationscheduled",
        "close",
    )


def test_empty_and_missing_are_alike_and_numbers_compare_as_numbers(
    hs: HubSpotConnector, rep: HubSpot
) -> None:
    """Seen as empty (None) and absent in HubSpot, or seen as 5.0 while HubSpot says 5:
    unchanged, so written."""
    receipt = hs.write_back(
        WriteBack(
            deal_id="1002",
            key="wb-empty",
            fields={"real_margin": 0.4, "discount_percent": 12},
            expected={"real_margin": None, "discount_percent": "5.0"},
        )
    )
    assert receipt.conflicts == {}
    assert deal(rep, "1002", "real_margin")["real_margin"] == "0.4"


def test_a_retried_write_back_is_not_a_conflict_with_itself(
    hs: HubSpotConnector, rep: HubSpot
) -> None:
    """The activity ran, its answer was lost, it runs again: the CRM holds Handoff's own
    new value, which is no conflict."""
    batch = WriteBack(
        deal_id="1001",
        key="wb-again",
        fields={"crm_stage": "qualified"},
        expected={"crm_stage": "new"},
    )
    assert hs.write_back(batch).conflicts == {}
    assert hs.write_back(batch).conflicts == {}
    assert deal(rep, "1001", "dealstage")["dealstage"] == "qualifiedtobuy"


def test_a_rep_who_closed_the_deal_lost_is_not_reopened(hs: HubSpotConnector, rep: HubSpot) -> None:
    """Closed Lost by hand stays Closed Lost: the stage is a conflict, never forced."""
    rep.crm.deals.basic_api.update(
        "1003", SimplePublicObjectInput(properties={"dealstage": "closedlost"})
    )
    receipt = hs.write_back(
        WriteBack(
            deal_id="1003",
            key="wb-lost",
            fields={"crm_stage": "negotiation"},
            expected={
                "crm_stage": hs.mapping.from_crm({"dealstage": "appointmentscheduled"})["crm_stage"]
            },
        )
    )
    assert receipt.conflicts == {"crm_stage": "closed_lost"}
    assert deal(rep, "1003", "dealstage")["dealstage"] == "closedlost"


# -- 2. close and move what Handoff opened -------------------------------------------------
def test_tasks_handoff_opened_are_completed_and_reassigned(
    hs: HubSpotConnector, rep: HubSpot, sandbox: HubSpotSandbox
) -> None:
    """Two open tasks: one completed, one moved to ops (hubspot_owner_id from the owners
    API); an unknown key is ignored; repeating it changes nothing."""
    opened = hs.write_back(
        WriteBack(
            deal_id="1001",
            key="wb-open",
            tasks=[
                TaskSpec(subject="Sign", owner_email=REP, key="t-sign"),
                TaskSpec(subject="Scope", owner_email=REP, key="t-scope"),
            ],
        )
    )
    sign, scope = opened.task_ids
    assert task(rep, sign)["hubspot_owner_id"] == owner_id(rep, REP)
    calls(sandbox)
    settle = WriteBack(
        deal_id="1001",
        key="wb-settle",
        complete_tasks=["t-sign", "t-nobody"],
        reassign_tasks={"t-scope": OPS},
    )
    receipt = hs.write_back(settle)
    assert receipt.completed_task_ids == [sign]
    assert task(rep, sign)["hs_task_status"] == "COMPLETED"
    moved = task(rep, scope)
    assert (moved["hs_task_status"], moved["handoff_owner_email"]) == ("NOT_STARTED", OPS)
    assert moved["hubspot_owner_id"] == owner_id(rep, OPS)
    stats = calls(sandbox)
    assert (stats[READ], stats[UPDATE]) == (1, 1)
    again = hs.write_back(settle)
    assert again.completed_task_ids == []
    assert task(rep, scope)["handoff_owner_email"] == OPS


def test_completing_tasks_alone_costs_one_update_by_key(
    hs: HubSpotConnector, rep: HubSpot, sandbox: HubSpotSandbox
) -> None:
    """Completion without moves: one batch update addressed by handoff_key, no read; an
    unknown key is skipped, a task the rep closed stays closed, and running it again
    changes nothing and creates nothing."""
    mine, theirs = hs.write_back(
        WriteBack(
            deal_id="1002",
            key="wb-open2",
            tasks=[
                TaskSpec(subject="Deliver", owner_email=OPS, key="t-deliver"),
                TaskSpec(subject="Call", owner_email=REP, key="t-call"),
            ],
        )
    ).task_ids
    rep.crm.objects.tasks.basic_api.update(
        theirs, SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"})
    )
    calls(sandbox)
    close = WriteBack(
        deal_id="1002", key="wb-close", complete_tasks=["t-deliver", "t-gone", "t-call"]
    )
    receipt = hs.write_back(close)
    assert receipt.completed_task_ids == [mine, theirs]
    stats = calls(sandbox)
    assert (stats[UPDATE], stats.get(READ, 0), stats["total"]) == (1, 0, 1)
    for tid, owner in ((mine, OPS), (theirs, REP)):
        now = task(rep, tid)
        assert (now["hs_task_status"], now["handoff_owner_email"]) == ("COMPLETED", owner)
    assert hs.write_back(close) == receipt
    keys = [t["handoff_key"] for t in sandbox.activity("1002")["tasks"]]
    assert sorted(keys) == ["t-call", "t-deliver"]


def test_a_completed_task_is_not_moved(hs: HubSpotConnector, rep: HubSpot) -> None:
    """A task the rep already completed keeps its owner when Handoff reassigns it."""
    (tid,) = hs.write_back(
        WriteBack(
            deal_id="1002",
            key="wb-done",
            tasks=[TaskSpec(subject="x", owner_email=REP, key="t-done")],
        )
    ).task_ids
    rep.crm.objects.tasks.basic_api.update(
        tid, SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"})
    )
    receipt = hs.write_back(
        WriteBack(deal_id="1002", key="wb-move", reassign_tasks={"t-done": BILLING})
    )
    assert receipt.completed_task_ids == []
    assert task(rep, tid)["handoff_owner_email"] == REP


def test_nothing_to_do_costs_no_call(hs: HubSpotConnector, sandbox: HubSpotSandbox) -> None:
    """An empty write-back (no fields, entries, completions or moves) sends nothing."""
    calls(sandbox)
    hs.write_back(WriteBack(deal_id="1001", key="wb-nothing", complete_tasks=[]))
    assert calls(sandbox).get("total", 0) == 0


# -- 3. the calls of one handoff -----------------------------------------------------------
def test_a_lead_to_cash_handoff_costs_at_most_19_calls_and_a_replay_creates_nothing(
    hs: HubSpotConnector, rep: HubSpot, sandbox: HubSpotSandbox
) -> None:
    """Seven write-backs: one PATCH each, one create per notes or tasks (association
    included), one owners page; every write-back run again (retried activities) adds
    no record."""
    calls(sandbox)
    writes = lead_to_cash_writes("1001", "lead-to-cash-hubspot-1001")
    receipts = [hs.write_back(b) for b in writes]
    stats = calls(sandbox)
    assert (stats[PATCH], stats[CREATE], stats[OWNERS]) == (7, 11, 1)
    assert stats["total"] == 19
    replayed = [hs.write_back(b) for b in writes]
    assert replayed == receipts
    activity = sandbox.activity("1001")
    keys = [r["handoff_key"] for r in activity["notes"] + activity["tasks"]]
    assert len(keys) == len(set(keys)) == 12
    assert sorted(n["id"] for n in activity["notes"]) == sorted(
        i for r in receipts for i in r.note_ids
    )
    stats = calls(sandbox)
    # A replay: the PATCHes again, and per entry batch a 409 then a read of the keys.
    assert (stats[PATCH], stats[CREATE], stats[READ], stats["total"]) == (7, 11, 11, 29)
    assert deal(rep, "1001", "handoff_stage")["handoff_stage"] == "done"


def test_a_task_moved_to_someone_without_a_hubspot_owner_leaves_the_old_owners_queue(
    hs: HubSpotConnector, rep: HubSpot
) -> None:
    """Moved to an email HubSpot has no owner for: the email is kept, and the task no
    longer sits in the previous owner's queue."""
    (tid,) = hs.write_back(
        WriteBack(
            deal_id="1003",
            key="wb-temp",
            tasks=[TaskSpec(subject="x", owner_email=REP, key="t-temp")],
        )
    ).task_ids
    hs.write_back(
        WriteBack(deal_id="1003", key="wb-temp2", reassign_tasks={"t-temp": "temp@example.org"})
    )
    moved = task(rep, tid)
    assert moved["handoff_owner_email"] == "temp@example.org"
    assert not moved.get("hubspot_owner_id")


def test_a_write_backs_independent_calls_are_sent_at_once() -> None:
    """Each step waits for the other to have started: only concurrent steps both finish."""
    started = {name: threading.Event() for name in ("fields", "notes")}

    def step(name: str, other: str) -> str:
        started[name].set()
        assert started[other].wait(60), f"{name} ran alone: the steps were not concurrent"
        return name

    done = together(
        {"fields": partial(step, "fields", "notes"), "notes": partial(step, "notes", "fields")}
    )
    assert done == {"fields": "fields", "notes": "notes"}


def test_a_failing_call_is_raised_only_once_every_other_call_has_finished() -> None:
    """A retried activity must never race calls of its own earlier attempt."""
    failed, finished = threading.Event(), threading.Event()

    def fail() -> None:
        failed.set()
        raise Rejected("refused", crm="hubspot", object_type="deals")

    def slow() -> None:
        assert failed.wait(60)
        time.sleep(0.2)  # still running well after the failure
        finished.set()

    with pytest.raises(Rejected):
        together({"fields": fail, "notes": slow})
    assert finished.is_set()

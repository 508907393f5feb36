"""Salesforce conditional write-back against the TLS sandbox with simple-salesforce: when
Handoff knows the LastModifiedDate its previous write left, a write-back is one API call
(If-Unmodified-Since, no read); a person's edit since makes it fall back to read and
compare, so a rep's stage is kept and reported, and everything else lands once."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from simple_salesforce import Salesforce
from support.salesforce import Sandbox, connector_fixtures, rep_opportunity

from connectors import salesforce_wire
from connectors.base import FieldValue, NoteSpec, TaskSpec, WriteBack, WriteReceipt
from connectors.salesforce import SalesforceConnector

REP, OPS = "sam.rep@example.com", "olga.ops@example.com"
OPPORTUNITY_PATCH = "PATCH /services/data/v{ver}/sobjects/Opportunity/{id}"
QUERY = "GET /services/data/v{ver}/query"
OPPORTUNITY_GET = "GET /services/data/v{ver}/sobjects/Opportunity/{id}"


server, sandbox, connector, rep = connector_fixtures("sf-conditional")


@pytest.fixture
def deal(rep: Salesforce) -> str:
    return rep_opportunity(rep)


@dataclass
class Handoff:
    """Sends write-backs as `workflows.kit.writeback` does: it carries the known
    LastModifiedDate and the ids of the tasks it opened from one receipt to the next,
    names the stage it last wrote as expected on every write, and completes the previous
    step's tasks."""

    connector: SalesforceConnector
    deal_id: str
    stage: str = "new"
    modified_at: datetime | None = None
    task_ids: dict[str, str] = field(default_factory=dict)
    receipts: list[WriteReceipt] = field(default_factory=list)

    def write(
        self, step: str, *, stage: str | None = None, task: bool = True, notes: int = 1
    ) -> WriteReceipt:
        fields: dict[str, FieldValue] = {"handoff_stage": step, "handoff_owner": REP}
        if stage is not None:
            fields["crm_stage"] = stage
        closing = list(self.task_ids)
        batch = WriteBack(
            deal_id=self.deal_id,
            key=step,
            fields=fields,
            notes=[NoteSpec(body=f"{step} {n}", key=f"{step}:note:{n}") for n in range(notes)],
            tasks=[TaskSpec(subject=step, owner_email=REP, key=f"{step}:task")] if task else [],
            expected={"crm_stage": self.stage},
            complete_tasks=closing,
            open_task_ids=dict(self.task_ids),
            modified_at=self.modified_at,
        )
        receipt = self.connector.write_back(batch)
        self.task_ids = dict(zip([t.key for t in batch.tasks], receipt.task_ids, strict=True))
        self.modified_at = None if receipt.conflicts else receipt.modified_at
        if stage is not None and "crm_stage" not in receipt.conflicts:
            self.stage = stage
        self.receipts.append(receipt)
        return receipt


def next_second(after: datetime | None = None) -> None:
    """Sleep into the next wall-clock second (past `after`'s second, if given)."""
    now = datetime.now(UTC)
    floor = (after or now).replace(microsecond=0).timestamp() + 1
    time.sleep(max(0.0, floor - now.timestamp()) + 0.02)


def api_calls(sandbox: Sandbox) -> tuple[int, Counter[str]]:
    """(API calls, subrequests by route) since the last call, then reset."""
    stats = sandbox.control("GET", "stats/calls")
    sandbox.control("POST", "stats/reset")
    return int(stats["total"]), Counter(stats["subrequests"])


def opportunity(rep: Salesforce, deal_id: str) -> dict[str, Any]:
    record: dict[str, Any] = rep.Opportunity.get(deal_id)
    return record


def entries(sandbox: Sandbox, deal_id: str) -> Counter[str]:
    """Tasks and timeline entries of the deal by Handoff_Key__c (a count above 1 is a
    duplicate)."""
    activity = sandbox.activity(deal_id)
    return Counter(r["Handoff_Key__c"] for r in [*activity["tasks"], *activity["notes"]])


def statuses(sandbox: Sandbox, deal_id: str) -> dict[str, str]:
    activity = sandbox.activity(deal_id)
    return {r["Handoff_Key__c"]: r["Status"] for r in activity["tasks"]}


# -- the usual path ------------------------------------------------------------------------
def test_a_write_back_that_knows_when_the_deal_last_changed_is_one_call(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce, deal: str
) -> None:
    """After the first compared write, every write-back of the handoff (fields, a note, a
    task, the previous task completed) is one API call and reads nothing first."""
    handoff = Handoff(connector, deal)
    handoff.write("qualify")  # nothing known, nothing to compare: a plain write
    assert handoff.modified_at is not None  # the stage after it is the one Handoff saw
    api_calls(sandbox)
    steps = [("deal_desk", "qualified"), ("close", "negotiation"), ("ops", "closed_won")]
    for step, stage in [*steps, ("cash", None)]:
        next_second(handoff.modified_at)  # a write in the known second reads (below)
        receipt = handoff.write(step, stage=stage)
        calls, subrequests = api_calls(sandbox)
        assert calls == 1, step
        # the PATCH and the GET of its LastModifiedDate after it; no compare read first
        assert (subrequests[OPPORTUNITY_PATCH], subrequests[OPPORTUNITY_GET]) == (1, 1), step
        assert subrequests[QUERY] == 0, step
        assert receipt.conflicts == {}
        assert receipt.modified_at is not None
    now = opportunity(rep, deal)
    assert (now["StageName"], now["Handoff_Stage__c"]) == ("Closed Won", "cash")
    assert handoff.modified_at == salesforce_wire.parse_datetime(now["LastModifiedDate"])
    assert set(entries(sandbox, deal).values()) == {1}
    done = statuses(sandbox, deal)
    assert [k for k, s in done.items() if s != "Completed" and k.endswith(":task")] == ["cash:task"]


def test_a_first_write_and_an_old_history_read_and_compare(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce, deal: str
) -> None:
    """With no known LastModifiedDate (a first write, a history from before), the stage
    write reads first, and a rep's stage is kept as today."""
    rep.Opportunity.update(deal, {"StageName": "Closed Lost"})
    api_calls(sandbox)
    receipt = Handoff(connector, deal).write("deal_desk", stage="qualified", task=False)
    calls, _ = api_calls(sandbox)
    assert calls == 2  # the compare read, then the write
    assert receipt.conflicts == {"crm_stage": "closed_lost"}
    assert receipt.modified_at is None  # the CRM does not hold what Handoff saw
    assert opportunity(rep, deal)["StageName"] == "Closed Lost"


# -- a person edited the deal since Handoff's last write -----------------------------------
def test_a_rep_stage_edit_between_writes_is_kept_reported_and_the_rest_lands_once(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce, deal: str
) -> None:
    """The rep moves the stage by hand between two writes: the conditional write meets
    412 and nothing of it lands; the fallback reads, keeps the rep's stage, reports it,
    and writes the other fields, the note, the task and the completion once."""
    handoff = Handoff(connector, deal)
    handoff.write("deal_desk", stage="qualified")
    assert handoff.modified_at is not None
    next_second(handoff.modified_at)
    rep.Opportunity.update(deal, {"StageName": "Closed Lost"})
    next_second()
    api_calls(sandbox)
    receipt = handoff.write("close", stage="negotiation", notes=2)
    calls, _ = api_calls(sandbox)
    assert calls == 3  # the conditional write (412), the read, the write
    assert receipt.conflicts == {"crm_stage": "closed_lost"}
    assert receipt.modified_at is None
    now = opportunity(rep, deal)
    assert (now["StageName"], now["Handoff_Stage__c"]) == ("Closed Lost", "close")
    assert entries(sandbox, deal) == Counter(
        {
            "deal_desk:note:0": 1,
            "deal_desk:task": 1,
            "close:note:0": 1,
            "close:note:1": 1,
            "close:task": 1,
        }
    )
    assert statuses(sandbox, deal)["deal_desk:task"] == "Completed"


def test_a_rep_edit_to_another_field_fails_the_precondition_but_the_stage_still_lands(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce, deal: str
) -> None:
    """The rep changes the Amount: If-Unmodified-Since refuses the write, the compare
    finds the stage as Handoff left it, so the stage lands and the Amount stays."""
    handoff = Handoff(connector, deal)
    handoff.write("deal_desk", stage="qualified")
    next_second(handoff.modified_at)
    rep.Opportunity.update(deal, {"Amount": 90_000})
    next_second()
    api_calls(sandbox)
    receipt = handoff.write("close", stage="negotiation")
    calls, _ = api_calls(sandbox)
    assert calls == 3
    assert receipt.conflicts == {}
    assert receipt.modified_at is not None  # compared clean: the next write is one call
    now = opportunity(rep, deal)
    assert (now["StageName"], now["Amount"]) == ("Negotiation/Review", 90_000)
    next_second(handoff.modified_at)
    api_calls(sandbox)
    handoff.write("ops", stage="closed_won")
    assert api_calls(sandbox)[0] == 1


def test_a_rep_edit_in_the_same_second_as_handoffs_write_is_not_overwritten(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce
) -> None:
    """A rep's edit in the same second as Handoff's write keeps the LastModifiedDate
    Handoff knows, so If-Unmodified-Since cannot see it: a write made while the server
    clock is still in that second reads and compares, and keeps the rep's stage. (The
    scenario is retried until the three calls fit in one second.)"""
    for _attempt in range(5):
        deal = str(
            rep.Opportunity.create(
                {"Name": "Same second", "StageName": "Prospecting", "CloseDate": "2026-12-31"}
            )["id"]
        )
        handoff = Handoff(connector, deal, stage="new")
        handoff.write("deal_desk", stage="qualified", task=False, notes=0)  # known: none yet
        next_second()
        handoff.write("qualify", task=False, notes=0)  # starts the second
        known = handoff.modified_at
        assert known is not None
        rep.Opportunity.update(deal, {"StageName": "Closed Lost"})
        edited = salesforce_wire.parse_datetime(opportunity(rep, deal)["LastModifiedDate"])
        receipt = handoff.write("close", stage="negotiation", task=False, notes=0)
        if edited != known or datetime.now(UTC).replace(microsecond=0) != known:
            continue  # the machine was too slow for one second: try again
        assert receipt.conflicts == {"crm_stage": "closed_lost"}
        assert opportunity(rep, deal)["StageName"] == "Closed Lost"
        return
    pytest.skip("five tries could not fit a write, an edit and a write in one second")


def test_if_unmodified_since_a_second_earlier_would_refuse_handoffs_own_write(
    connector: SalesforceConnector, sandbox: Sandbox, deal: str
) -> None:
    """Why the precondition is the known second itself, not the one before: the stamp
    of Handoff's own write is that second, and a PATCH conditional on the second before
    is refused (412)."""
    handoff = Handoff(connector, deal)
    handoff.write("deal_desk", stage="qualified")
    known = handoff.modified_at
    assert known is not None
    path = f"/services/data/v59.0/sobjects/Opportunity/{deal}"
    earlier = datetime.fromtimestamp(known.timestamp() - 1, UTC)
    for stamp, status in [(earlier, 412), (known, 204)]:
        header = stamp.strftime("%a, %d %b %Y %H:%M:%S GMT")
        answer = sandbox.rest(
            "PATCH", path, json={"Handoff_Status__c": "x"}, headers={"If-Unmodified-Since": header}
        )
        assert answer.status_code == status


# -- faults ---------------------------------------------------------------------------------
def test_a_lost_answer_to_a_conditional_write_is_sent_again_without_duplicates(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce, deal: str
) -> None:
    """The conditional write lands but its answer is lost: sent again, it meets 412 (its
    own write), falls back to compare (the CRM holds Handoff's own values: no conflict)
    and upserts the same rows."""
    handoff = Handoff(connector, deal)
    handoff.write("deal_desk", stage="qualified")
    next_second(handoff.modified_at)
    sandbox.control("POST", "lost-responses", {"count": 1})
    receipt = handoff.write("close", stage="negotiation", notes=2)
    assert receipt.conflicts == {}
    assert opportunity(rep, deal)["StageName"] == "Negotiation/Review"
    assert set(entries(sandbox, deal).values()) == {1}
    assert statuses(sandbox, deal)["deal_desk:task"] == "Completed"


def test_a_session_ended_inside_a_conditional_write_logs_in_and_lands_once(
    monkeypatch: pytest.MonkeyPatch,
    connector: SalesforceConnector,
    sandbox: Sandbox,
    rep: Salesforce,
    deal: str,
) -> None:
    """A conditional composite answered INVALID_SESSION_ID mid-way (the sandbox applied
    it; only the answer says the session ended): the connector logs in anew, sends again,
    meets its own write (412), compares, and every row exists once."""
    handoff = Handoff(connector, deal)
    handoff.write("deal_desk", stage="qualified")
    next_second(handoff.modified_at)
    real = salesforce_wire.composite_bodies
    answers: list[int] = []

    def session_ends_once(answer: Any, deal_id: str) -> dict[str, Any]:
        answers.append(1)
        if len(answers) == 1:
            ended = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
            answer = {
                "compositeResponse": [{"body": ended, "httpStatusCode": 401, "referenceId": "deal"}]
            }
        return real(answer, deal_id)

    monkeypatch.setattr(salesforce_wire, "composite_bodies", session_ends_once)
    sandbox.control("POST", "stats/reset")
    receipt = handoff.write("close", stage="negotiation")
    assert sandbox.control("GET", "stats")["POST /services/oauth2/token"] == 1
    assert len(answers) >= 3  # the ended one, the 412, the compare read and write
    assert receipt.conflicts == {}
    assert opportunity(rep, deal)["StageName"] == "Negotiation/Review"
    assert set(entries(sandbox, deal).values()) == {1}
    assert statuses(sandbox, deal)["deal_desk:task"] == "Completed"


def test_a_task_someone_deleted_falls_back_and_the_write_still_lands(
    connector: SalesforceConnector, sandbox: Sandbox, rep: Salesforce, deal: str
) -> None:
    """Completing a task by an id that is gone rolls the conditional write back; the
    compared path looks tasks up by key, skips the missing one, and writes the rest."""
    handoff = Handoff(connector, deal)
    handoff.write("deal_desk", stage="qualified")
    rep.Task.delete(handoff.task_ids["deal_desk:task"])
    next_second()
    receipt = handoff.write("close", stage="negotiation")
    assert receipt.completed_task_ids == []
    assert opportunity(rep, deal)["StageName"] == "Negotiation/Review"
    assert entries(sandbox, deal)["close:task"] == 1

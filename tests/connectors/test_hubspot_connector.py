"""The HubSpot connector against the sandbox, over real HTTP with hubspot-api-client."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import structlog
from fastapi import FastAPI
from support.hubspot import (
    CREATE,
    PATCH,
    READ,
    TOKEN,
    HubSpotSandbox,
    connector_fixtures,
)

from connectors import hubspot_wire
from connectors.base import BillingDocument, CrmConnector, NoteSpec, TaskSpec, WriteBack
from connectors.errors import AuthFailed, CrmError, NotFound, RateLimited, Rejected, Unavailable
from connectors.hubspot import HubSpotConnector
from sandbox.common import free_port, serve_in_thread

sandbox, hs = connector_fixtures()


# -- reads -------------------------------------------------------------------------------
def test_connector_satisfies_the_protocol(hs: HubSpotConnector) -> None:
    """HubSpotConnector is a CrmConnector for the crm named hubspot."""
    assert isinstance(hs, CrmConnector)
    assert hs.crm == "hubspot"


def test_get_deal_maps_properties_to_the_canonical_deal(hs: HubSpotConnector) -> None:
    """A seeded deal reads back with float amounts, owner email, canonical stage and fields."""
    deal = hs.get_deal("1001")
    assert deal.id == "1001"
    assert deal.name == "Acme Corp — platform rollout"
    assert deal.crm_stage == "new"
    assert deal.amount == 120_000.0
    assert deal.discount_percent == 30.0
    assert deal.owner_email == "sam.rep@example.com"
    assert deal.fields["scope"] == "Platform rollout for 3 sites"
    assert deal.fields["start_date"] == "2026-12-01"
    assert deal.updated_at is not None


def test_get_deal_of_an_unknown_id_raises_not_found(hs: HubSpotConnector) -> None:
    """A deal that does not exist is NotFound, with the crm, object and id."""
    with pytest.raises(NotFound) as caught:
        hs.get_deal("424242")
    assert (caught.value.crm, caught.value.record_id, caught.value.status) == (
        "hubspot",
        "424242",
        404,
    )


def test_mapping_overrides_read_a_different_property(sandbox: HubSpotSandbox) -> None:
    """A policy override (scope → site_notes) changes which property a canonical field reads."""
    deal = sandbox.connector(mapping={"scope": "site_notes"}).get_deal("1001")
    assert deal.fields["scope"] == "Badge access via reception"


# -- writes ------------------------------------------------------------------------------
def test_update_deal_patches_the_mapped_properties(sandbox: HubSpotSandbox) -> None:
    """Canonical fields land in their HubSpot properties, the stage through the stage map."""
    hs = sandbox.connector()
    hs.update_deal(
        "1002",
        {
            "crm_stage": "closed_won",
            "handoff_status": "waiting",
            "approved_discount": 25.0,
            "budget_confirmed": True,
        },
        key="k-update",
    )
    deal = sandbox.activity("1002")["deal"]
    assert deal["dealstage"] == "closedwon"
    assert deal["handoff_status"] == "waiting"
    assert deal["approved_discount"] == "25"
    assert deal["budget_confirmed"] == "true"
    assert hs.get_deal("1002").crm_stage == "closed_won"


def test_update_deal_with_an_invalid_stage_is_rejected(hs: HubSpotConnector) -> None:
    """HubSpot's VALIDATION_ERROR (a stage that is not in the pipeline) becomes Rejected."""
    with pytest.raises(Rejected, match="VALIDATION_ERROR"):
        hs.update_deal("1002", {"crm_stage": "not-a-stage"}, key="k-bad")


def test_add_note_twice_with_one_key_leaves_one_note(sandbox: HubSpotSandbox) -> None:
    """Repeating a note with the same key returns the same id and keeps one note on the deal."""
    hs = sandbox.connector()
    first = hs.add_note("1001", NoteSpec(body="Budget confirmed by CFO", key="note-1"))
    second = hs.add_note("1001", NoteSpec(body="Budget confirmed by CFO", key="note-1"))
    notes = sandbox.activity("1001")["notes"]
    assert first == second
    assert [(n["id"], n["hs_note_body"]) for n in notes] == [(first, "Budget confirmed by CFO")]


def test_create_task_is_idempotent_and_assigned(sandbox: HubSpotSandbox) -> None:
    """A task is created once per key, with its subject, owner and due time."""
    hs = sandbox.connector()
    due = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    task = TaskSpec(
        subject="Fill the scope", owner_email="sam.rep@example.com", due_at=due, key="task-1"
    )
    ids = {hs.create_task("1001", task) for _ in range(3)}
    tasks = sandbox.activity("1001")["tasks"]
    assert len(ids) == 1
    assert len(tasks) == 1
    assert tasks[0]["hs_task_subject"] == "Fill the scope"
    assert tasks[0]["handoff_owner_email"] == "sam.rep@example.com"
    assert tasks[0]["hs_timestamp"] == "2026-12-01T09:30:00.000Z"


def test_create_billing_document_makes_one_order(sandbox: HubSpotSandbox) -> None:
    """The billing document becomes one order on the deal, however often it is written."""
    hs = sandbox.connector()
    doc = BillingDocument(title="Acme rollout", amount=84_000.5, key="order-1")
    first = hs.create_billing_document("1001", doc)
    assert hs.create_billing_document("1001", doc) == first
    orders = sandbox.activity("1001")["orders"]
    assert [(o["id"], o["hs_total_price"], o["hs_currency_code"]) for o in orders] == [
        (first, "84000.5", "USD")
    ]


def test_a_write_whose_response_was_lost_is_retried_without_a_duplicate(
    sandbox: HubSpotSandbox,
) -> None:
    """The sandbox creates the note but loses its answer; the retry meets a 409 for the
    existing key and reads it back instead of creating a second note."""
    hs = sandbox.connector()
    sandbox.lose_responses(2)
    note_id = hs.add_note("1001", NoteSpec(body="Contract signed", key="note-lost"))
    notes = sandbox.activity("1001")["notes"]
    assert [n["id"] for n in notes] == [note_id]
    assert (sandbox.stats()[CREATE], sandbox.stats()[READ]) == (2, 1)
    assert len(sandbox.sleeps) == 1


def test_write_back_batches_notes_and_tasks(sandbox: HubSpotSandbox) -> None:
    """One PATCH, one create (with the association) for all notes and one for all tasks;
    a replay adds nothing."""
    hs = sandbox.connector()
    batch = WriteBack(
        deal_id="1001",
        key="wb-1",
        fields={"handoff_stage": "close"},
        notes=[NoteSpec(body=f"note {i}", key=f"wb-1-n{i}") for i in range(3)],
        tasks=[
            TaskSpec(subject=f"task {i}", owner_email="sam.rep@example.com", key=f"wb-1-t{i}")
            for i in range(2)
        ],
    )
    sandbox.control("POST", "stats/reset")
    receipt = hs.write_back(batch)
    stats = sandbox.stats()
    assert (stats[CREATE], stats[PATCH], stats["GET /crm/v3/owners/"]) == (2, 1, 1)
    assert stats["total"] == 4
    assert hs.write_back(batch) == receipt
    activity = sandbox.activity("1001")
    assert sorted(n["id"] for n in activity["notes"]) == sorted(receipt.note_ids)
    assert sorted(t["id"] for t in activity["tasks"]) == sorted(receipt.task_ids)
    assert activity["deal"]["handoff_stage"] == "close"


# -- change feed -------------------------------------------------------------------------
def test_read_changes_pages_through_every_deal_once(hs: HubSpotConnector) -> None:
    """Small pages resume from the cursor: each deal is seen once, then the feed is done."""
    seen, cursor, done = [], None, False
    for _ in range(10):
        page = hs.read_changes(cursor, limit=1)
        seen += [c.deal_id for c in page.changes]
        cursor, done = page.cursor, page.done
        if done and not page.changes:
            break
    assert sorted(seen) == ["1001", "1002", "1003"]
    assert done


def test_read_changes_marks_handoff_writes_as_echoes(sandbox: HubSpotSandbox) -> None:
    """A change Handoff wrote is by_handoff; a person's later edit elsewhere is not."""
    hs = sandbox.connector()
    cursor = hs.read_changes(None).cursor
    hs.update_deal("1001", {"handoff_status": "waiting"}, key="echo-1")
    old = str(int(time.time() * 1000) - 3_600_000)
    sandbox.api(
        "PATCH",
        "/crm/v3/objects/deals/1002",
        json={"properties": {"amount": "19000", "handoff_last_write": f"{old} k"}},
    )
    page = hs.read_changes(cursor)
    by_id = {c.deal_id: c for c in page.changes}
    assert set(by_id) == {"1001", "1002"}
    assert by_id["1001"].by_handoff
    assert by_id["1001"].fields["handoff_status"] == "waiting"
    assert not by_id["1002"].by_handoff
    assert by_id["1002"].fields["amount"] == "19000"


# -- errors, retries and pacing ----------------------------------------------------------
def test_a_wrong_token_is_auth_failed_and_never_logged(sandbox: HubSpotSandbox) -> None:
    """401 INVALID_AUTHENTICATION becomes AuthFailed; the token appears in no log or message."""
    secret = "pat-na1-very-secret-token"
    hs = sandbox.connector(access_token=secret)
    with structlog.testing.capture_logs() as logs, pytest.raises(AuthFailed) as caught:
        hs.get_deal("1001")
    assert "INVALID_AUTHENTICATION" in str(caught.value)
    assert secret not in str(caught.value) + repr(logs)


def test_5xx_is_retried_then_unavailable(sandbox: HubSpotSandbox) -> None:
    """Every answer a 500: the connector backs off max_retries times, then raises Unavailable."""
    hs = sandbox.connector(max_retries=3, backoff_s=0.5)
    sandbox.faults(error_rate=1.0)
    with pytest.raises(Unavailable) as caught:
        hs.get_deal("1001")
    assert caught.value.status == 500
    # Jittered exponential backoff: attempt i waits between half and all of 0.5 s * 2**i.
    assert len(sandbox.sleeps) == 3
    for i, slept in enumerate(sandbox.sleeps):
        assert 0.25 * 2**i <= slept <= 0.5 * 2**i


def test_a_down_crm_is_unavailable(sandbox: HubSpotSandbox) -> None:
    """A CRM answering 503 to everything is Unavailable."""
    sandbox.faults(down=True)
    with pytest.raises(Unavailable) as caught:
        sandbox.connector(max_retries=1).add_note("1001", NoteSpec(body="x", key="down"))
    assert caught.value.status == 503


def test_a_refused_connection_is_unavailable() -> None:
    """Nobody listening on the port: Unavailable, not a raw urllib3 error."""
    hs = HubSpotConnector(TOKEN, host=f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(Unavailable) as caught:
        hs.get_deal("1001")
    assert caught.value.__cause__ is not None


def test_429_burst_honours_retry_after_then_succeeds(sandbox: HubSpotSandbox) -> None:
    """Two 429s with Retry-After: 3 are waited out (>= 3 s each) and the read succeeds."""
    hs = sandbox.connector()
    sandbox.faults(burst_429=2, retry_after_s=3)
    assert hs.get_deal("1001").amount == 120_000.0
    assert len(sandbox.sleeps) == 2
    assert all(s >= 3 for s in sandbox.sleeps)


def test_429_beyond_the_retries_is_rate_limited(sandbox: HubSpotSandbox) -> None:
    """A burst longer than max_retries surfaces as RateLimited carrying Retry-After."""
    sandbox.faults(burst_429=5, retry_after_s=2)
    with pytest.raises(RateLimited) as caught:
        sandbox.connector(max_retries=1).get_deal("1001")
    assert caught.value.retry_after == 2.0


def test_calls_stay_under_the_rate_budget_without_a_429(sandbox: HubSpotSandbox) -> None:
    """With 10 calls per second allowed, 16 reads at a 0.5 share pace themselves: no 429."""
    sandbox.limits(max=10, interval_ms=1000)
    hs = sandbox.connector(sleep=time.sleep, max_retries=0, rate_budget_share=0.5)
    started = time.monotonic()
    for _ in range(16):
        hs.get_deal("1001")  # max_retries=0: a 429 would raise RateLimited
    assert time.monotonic() - started >= 1.0
    assert hs.last_limits["max"] == 10


def test_a_2xx_of_the_wrong_shape_is_rejected() -> None:
    """A 200 whose body is not a HubSpot object becomes Rejected, not an AttributeError."""
    app = FastAPI()

    @app.get("/crm/v3/objects/deals/{deal_id}")
    def odd(deal_id: str) -> dict[str, object]:
        return {"unexpected": True}

    with serve_in_thread(app, port=free_port()) as base:
        hs = HubSpotConnector(TOKEN, host=base, max_retries=0)
        with pytest.raises(Rejected, match="unexpected response"):
            hs.get_deal("1001")
        hs.close()


# -- the boundary: our own bugs are not CRM errors ------------------------------------------
@pytest.mark.parametrize("bug", [KeyError("dealname"), TypeError("bad"), AttributeError("x")])
def test_a_bug_in_our_mapping_code_surfaces_as_itself(
    sandbox: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    """A KeyError/TypeError/AttributeError in the connector's own parsing propagates
    unchanged, is not retried, and is never a connectors.errors CrmError."""
    hs = sandbox.connector()

    def broken(data: object) -> object:
        raise bug

    monkeypatch.setattr(hubspot_wire, "properties", broken)
    sandbox.control("POST", "stats/reset")
    with pytest.raises(type(bug)) as caught:
        hs.get_deal("1001")
    assert caught.value is bug
    assert not isinstance(caught.value, CrmError)
    assert sandbox.stats()["GET /crm/v3/objects/{ot}/{oid}"] == 1
    assert sandbox.sleeps == []


def test_a_client_argument_error_is_not_a_crm_error(sandbox: HubSpotSandbox) -> None:
    """The client refusing our own arguments (ApiTypeError) is a bug: it propagates as such."""
    hs = sandbox.connector()
    with pytest.raises(TypeError) as caught:
        hs._call("deals", "1001", lambda: hs._basic.get_by_id("1001", no_such_kwarg=1), str)
    assert not isinstance(caught.value, CrmError)


# -- tasks assigned natively -------------------------------------------------------------------
def owner_id(sandbox: HubSpotSandbox, email: str) -> str:
    found: str = sandbox.api("GET", "/crm/v3/owners/", params={"email": email}).json()["results"][
        0
    ]["id"]
    return found


def test_tasks_are_assigned_to_the_owners_hubspot_id(sandbox: HubSpotSandbox) -> None:
    """create_task sets hubspot_owner_id from the owners API and keeps handoff_owner_email."""
    hs = sandbox.connector()
    hs.create_task(
        "1001", TaskSpec(subject="Scope", owner_email="olga.ops@example.com", key="t-o1")
    )
    task = sandbox.activity("1001")["tasks"][0]
    assert task["hubspot_owner_id"] == owner_id(sandbox, "olga.ops@example.com")
    assert task["handoff_owner_email"] == "olga.ops@example.com"


def test_owner_ids_are_resolved_once_per_connector(sandbox: HubSpotSandbox) -> None:
    """Three tasks for one owner (two in one write-back) ask the owners API once."""
    hs = sandbox.connector()
    sandbox.control("POST", "stats/reset")
    spec = {"owner_email": "Sam.Rep@example.com"}
    hs.create_task("1002", TaskSpec(subject="a", key="t-c1", **spec))
    hs.write_back(
        WriteBack(
            deal_id="1002",
            key="wb-owner",
            tasks=[TaskSpec(subject=s, key=f"t-c-{s}", **spec) for s in ("b", "c")],
        )
    )
    asked = sandbox.stats()["GET /crm/v3/owners/"]
    tasks = sandbox.activity("1002")["tasks"]
    assert {t["hubspot_owner_id"] for t in tasks} == {owner_id(sandbox, "sam.rep@example.com")}
    assert len(tasks) == 3
    assert asked == 1


def test_a_task_for_an_email_without_owner_is_still_created(sandbox: HubSpotSandbox) -> None:
    """An email HubSpot has no owner for: the task is made, by email only, without owner id."""
    hs = sandbox.connector()
    hs.create_task("1003", TaskSpec(subject="x", owner_email="temp@example.org", key="t-n1"))
    task = sandbox.activity("1003")["tasks"][0]
    assert task.get("hubspot_owner_id") is None
    assert task["handoff_owner_email"] == "temp@example.org"

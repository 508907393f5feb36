"""SalesforceConnector against the TLS sandbox, with the real simple-salesforce client.

Every auth mode logs in over HTTPS; writes are checked in the sandbox's read model.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.format import format_soql
from support.salesforce import (
    API,
    Sandbox,
    auth_for,
    connector_fixtures,
    connector_for,
    issued_session_id,
    seeded_opportunity,
)

from connectors import salesforce_wire
from connectors.base import BillingDocument, NoteSpec, TaskSpec, WriteBack
from connectors.errors import (
    AuthFailed,
    CrmError,
    NotFound,
    RateLimited,
    RecordLocked,
    Rejected,
    Unavailable,
)
from connectors.salesforce import SalesforceAuth, SalesforceConnector
from sandbox.common import free_port

LOGIN_MODES = ["client_credentials", "jwt_bearer", "password", "oauth_password"]


server, sandbox, connector, _ = connector_fixtures("sf-connector")


@pytest.fixture
def acme(sandbox: Sandbox) -> str:
    return str(seeded_opportunity(sandbox, "Acme rollout")["Id"])


def _user_id(sandbox: Sandbox, email: str) -> str:
    q = format_soql("SELECT Id FROM User WHERE Email = {}", email)
    return str(sandbox.rest("GET", f"{API}/query/", params={"q": q}).json()["records"][0]["Id"])


# -- auth --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [*LOGIN_MODES, "session"])
def test_every_auth_mode_reads_a_seeded_deal(sandbox: Sandbox, acme: str, mode: str) -> None:
    """Each auth mode logs in (or uses its session) and reads the Opportunity as a Deal."""
    deal = connector_for(sandbox, auth_for(sandbox, mode)).get_deal(acme)
    assert (deal.name, deal.crm_stage, deal.amount) == ("Acme rollout", "new", 48000.0)
    assert deal.owner_email == "sam.rep@example.com"
    assert deal.fields["primary_contact"] == "wile@acme.example"


def test_jwt_bearer_accepts_a_private_key_file(sandbox: Sandbox, acme: str, tmp_path: Path) -> None:
    """The JWT flow signs with a key read from a file as well as one given inline."""
    deal = connector_for(sandbox, auth_for(sandbox, "jwt_bearer", tmp_path)).get_deal(acme)
    assert deal.id == acme


@pytest.mark.parametrize("mode", LOGIN_MODES)
def test_login_modes_log_in_again_after_the_session_expires(
    sandbox: Sandbox, acme: str, mode: str
) -> None:
    """After every session is revoked, the next calls re-login and succeed."""
    connector = connector_for(sandbox, auth_for(sandbox, mode))
    connector.get_deal(acme)
    sandbox.faults(expire_sessions=True)
    connector.update_deal(acme, {"handoff_status": f"after expiry ({mode})"}, key="k")
    sandbox.faults(expire_sessions=True)  # the owner lookup below is a SOQL query
    task = TaskSpec(subject="after expiry", owner_email="lee.legal@example.com", key=f"x-{mode}")
    connector.create_task(acme, task)
    activity = sandbox.activity(acme)
    assert activity["opportunity"]["Handoff_Status__c"] == f"after expiry ({mode})"
    owners = [t["OwnerId"] for t in activity["tasks"] if t["Handoff_Key__c"] == f"x-{mode}"]
    assert owners == [_user_id(sandbox, "lee.legal@example.com")]


def test_direct_session_expiry_is_auth_failed(sandbox: Sandbox, acme: str) -> None:
    """A session id given directly cannot be renewed, so expiry surfaces as AuthFailed."""
    auth = SalesforceAuth(
        mode="session", session_id=issued_session_id(sandbox), instance_url=sandbox.base
    )
    connector = connector_for(sandbox, auth)
    connector.get_deal(acme)
    sandbox.faults(expire_sessions=True)
    with pytest.raises(AuthFailed) as caught:
        connector.get_deal(acme)
    assert caught.value.crm == "salesforce"
    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("mode", "bad"),
    [
        ("password", {"password": "wrong"}),
        ("client_credentials", {"consumer_secret": "wrong"}),
        ("jwt_bearer", {"consumer_key": "unknown-app"}),
    ],
)
def test_bad_credentials_are_auth_failed(
    sandbox: Sandbox, acme: str, mode: str, bad: dict[str, str]
) -> None:
    """A refused login (SOAP fault or OAuth error) becomes AuthFailed without the secret."""
    auth = SalesforceAuth(**{**auth_for(sandbox, mode).model_dump(), **bad})
    with pytest.raises(AuthFailed) as caught:
        connector_for(sandbox, auth).get_deal(acme)
    assert "wrong" not in str(caught.value)


def test_auth_model_names_missing_fields() -> None:
    """An incomplete auth config is refused with the fields it needs."""
    with pytest.raises(ValueError, match="consumer_secret"):
        SalesforceAuth(mode="client_credentials", consumer_key="k", domain="acme.my")
    with pytest.raises(ValueError, match="My Domain"):
        SalesforceAuth(mode="client_credentials", consumer_key="k", consumer_secret="s")


# -- deals -------------------------------------------------------------------------------
def test_update_deal_writes_mapped_fields_and_reads_them_back(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """Canonical fields land in their Salesforce fields; stage and owner are translated."""
    connector.update_deal(
        acme,
        {
            "crm_stage": "closed_won",
            "discount_percent": 12.5,
            "scope": "2 sites",
            "budget_confirmed": True,
            "handoff_due_at": "2026-12-01T09:30:00Z",
            "owner_email": "maya.manager@example.com",
        },
        key="wf-1:close",
    )
    stored = sandbox.activity(acme)["opportunity"]
    assert stored["StageName"] == "Closed Won"
    assert stored["OwnerId"] == _user_id(sandbox, "maya.manager@example.com")
    assert stored["Handoff_Due_At__c"] == "2026-12-01T09:30:00.000+0000"
    deal = connector.get_deal(acme)
    assert (deal.crm_stage, deal.discount_percent, deal.owner_email) == (
        "closed_won",
        12.5,
        "maya.manager@example.com",
    )
    assert deal.fields["scope"] == "2 sites"
    assert deal.fields["budget_confirmed"] == "true"


def test_field_mapping_overrides_the_default(sandbox: Sandbox, acme: str) -> None:
    """A policy override sends a canonical field to another Salesforce field."""
    connector = connector_for(
        sandbox, auth_for(sandbox, "session"), field_mapping={"scope": "Promised__c"}
    )
    connector.update_deal(acme, {"scope": "only the pilot"}, key="k")
    assert sandbox.activity(acme)["opportunity"]["Promised__c"] == "only the pilot"


def test_unknown_deal_is_not_found(connector: SalesforceConnector) -> None:
    """Reading an Opportunity id that does not exist raises NotFound with its id."""
    with pytest.raises(NotFound) as caught:
        connector.get_deal("006Hd00000ZZZZZ")
    assert caught.value.record_id == "006Hd00000ZZZZZ"


def test_invalid_values_are_rejected(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """A validation rule or a bad picklist value is Rejected and nothing changes."""
    with pytest.raises(Rejected, match="FIELD_CUSTOM_VALIDATION_EXCEPTION"):
        connector.update_deal(acme, {"discount_percent": 150}, key="k")
    with pytest.raises(Rejected, match="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"):
        connector.update_deal(acme, {"crm_stage": "Maybe Later"}, key="k")
    assert sandbox.activity(acme)["opportunity"]["Discount_Percent__c"] != 150


# -- notes, tasks, orders ----------------------------------------------------------------
def test_same_key_twice_leaves_one_note_task_and_order(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """Upserts by Handoff_Key__c make every write idempotent and return the same id."""
    due = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    task = TaskSpec(
        subject="Confirm start date", owner_email="sam.rep@example.com", due_at=due, key="t-1"
    )
    note = NoteSpec(body="Budget confirmed by CFO\nvia email", key="n-1")
    doc = BillingDocument(title="Acme rollout", amount=45600.0, key="o-1")
    first = (
        connector.add_note(acme, note),
        connector.create_task(acme, task),
        connector.create_billing_document(acme, doc),
    )
    again = (
        connector.add_note(acme, note),
        connector.create_task(acme, task),
        connector.create_billing_document(acme, doc),
    )
    assert first == again
    activity = sandbox.activity(acme)
    notes = [n for n in activity["notes"] if n["Handoff_Key__c"] == "n-1"]
    tasks = [t for t in activity["tasks"] if t["Handoff_Key__c"] == "t-1"]
    orders = [o for o in activity["orders"] if o["Handoff_Key__c"] == "o-1"]
    assert len(notes) == len(tasks) == len(orders) == 1
    assert notes[0]["Title"] == "Budget confirmed by CFO"
    assert tasks[0]["OwnerId"] == _user_id(sandbox, "sam.rep@example.com")
    assert tasks[0]["ActivityDate"] == "2026-12-03"
    assert orders[0]["AccountId"] == activity["opportunity"]["AccountId"]
    assert (orders[0]["Status"], orders[0]["Amount__c"]) == ("Draft", 45600.0)


def test_task_for_an_unknown_owner_is_rejected(connector: SalesforceConnector, acme: str) -> None:
    """A task owner must be an active Salesforce user; the email is named."""
    task = TaskSpec(subject="x", owner_email="nobody@example.com", key="t-unknown")
    with pytest.raises(Rejected, match=re.escape("nobody@example.com")):
        connector.create_task(acme, task)


def test_note_on_a_missing_deal_is_not_found(connector: SalesforceConnector) -> None:
    """A note whose parent Opportunity does not exist raises NotFound."""
    with pytest.raises(NotFound):
        connector.add_note("006Hd00000ZZZZZ", NoteSpec(body="orphan", key="n-orphan"))


def test_write_back_batches_and_repeats_harmlessly(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """A stage's fields, notes and tasks go out as one composite request; repeating it
    changes nothing."""
    batch = WriteBack(
        deal_id=acme,
        key="wf-2:handoff",
        fields={"handoff_stage": "ops_handoff"},
        notes=[NoteSpec(body=f"note {i}", key=f"wb-n{i}") for i in range(3)],
        tasks=[
            TaskSpec(subject=f"task {i}", owner_email="olga.ops@example.com", key=f"wb-t{i}")
            for i in range(2)
        ],
    )
    sandbox.control("POST", "stats/reset")
    first = connector.write_back(batch)
    second = connector.write_back(batch)
    # the same records; the Opportunity's LastModifiedDate (whole seconds) moves on if
    # the repeat lands in a later second, so it is compared apart, never earlier
    assert first.model_dump(exclude={"modified_at"}) == second.model_dump(exclude={"modified_at"})
    assert first.modified_at is not None and second.modified_at is not None
    assert second.modified_at >= first.modified_at
    assert len(first.note_ids) == 3
    assert len(first.task_ids) == 2
    activity = sandbox.activity(acme)
    assert sorted(
        n["Handoff_Key__c"] for n in activity["notes"] if n["Handoff_Key__c"].startswith("wb-")
    ) == ["wb-n0", "wb-n1", "wb-n2"]
    assert len([t for t in activity["tasks"] if t["Handoff_Key__c"].startswith("wb-")]) == 2
    assert activity["opportunity"]["Handoff_Stage__c"] == "ops_handoff"
    stats = sandbox.control("GET", "stats")
    assert stats["POST /services/data/v{ver}/composite"] == 2
    # Besides: the login and the owner's User id (once, cached).
    assert stats["GET /services/data/v{ver}/query"] == 1
    assert sum(stats.values()) == 4


def test_notes_are_completed_tasks_because_note_takes_no_custom_fields(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """A note is logged as a completed Task keyed by Handoff_Key__c, never a classic Note."""
    notes_before = _count(sandbox, "Note", acme, "ParentId")
    first = connector.add_note(acme, NoteSpec(body="Deal desk approved\nat 30%", key="tl-1"))
    again = connector.add_note(acme, NoteSpec(body="Deal desk approved\nat 30%", key="tl-1"))
    assert first == again
    q = format_soql(
        "SELECT Id, Status, Subject, Description, WhatId FROM Task WHERE Handoff_Key__c = {}",
        "tl-1",
    )
    rows = sandbox.rest("GET", f"{API}/query/", params={"q": q}).json()["records"]
    assert [(r["Id"], r["Status"], r["Subject"], r["WhatId"]) for r in rows] == [
        (first, "Completed", "Deal desk approved", acme)
    ]
    assert rows[0]["Description"] == "Deal desk approved\nat 30%"
    assert _count(sandbox, "Note", acme, "ParentId") == notes_before


def _count(sandbox: Sandbox, obj: str, parent: str, field: str) -> int:
    q = format_soql(f"SELECT COUNT() FROM {obj} WHERE {field} = {{}}", parent)  # noqa: S608
    return int(sandbox.rest("GET", f"{API}/query/", params={"q": q}).json()["totalSize"])


# -- the boundary: only the client's errors become CRM errors ----------------------------
def test_a_session_ended_between_composite_subrequests_logs_in_and_sends_again(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """A subrequest answered INVALID_SESSION_ID (allOrNone rolled the rest back) is an
    expired session, not a refusal: the connector logs in anew and the batch lands once."""
    real = salesforce_wire.composite_bodies
    calls: list[int] = []

    def first_session_ends(answer: Any, deal_id: str) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            ended = [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
            answer = {
                "compositeResponse": [
                    {"body": ended, "httpStatusCode": 401, "referenceId": "fields"}
                ]
            }
        return real(answer, deal_id)

    monkeypatch.setattr(salesforce_wire, "composite_bodies", first_session_ends)
    batch = WriteBack(
        deal_id=acme,
        key="wf-session",
        tasks=[TaskSpec(subject="once", owner_email="olga.ops@example.com", key="sess-t0")],
    )
    connector.get_deal(acme)  # logged in before the session ends
    sandbox.control("POST", "stats/reset")
    result = connector.write_back(batch)
    assert len(calls) == 2
    assert sandbox.control("GET", "stats")["POST /services/oauth2/token"] == 1
    tasks = [t for t in sandbox.activity(acme)["tasks"] if t["Handoff_Key__c"] == "sess-t0"]
    assert [t["Id"] for t in tasks] == result.task_ids


def _raise(kind: type[Exception]) -> Any:
    def broken(*_: object) -> Any:
        raise kind("a bug in the connector")

    return broken


@pytest.mark.parametrize("kind", [KeyError, TypeError, AttributeError])
def test_a_bug_in_our_own_code_propagates_unchanged(
    monkeypatch: pytest.MonkeyPatch,
    connector: SalesforceConnector,
    acme: str,
    kind: type[Exception],
) -> None:
    """A KeyError/TypeError/AttributeError in connector code is a bug, never "CRM refused"."""
    monkeypatch.setattr(salesforce_wire, "composite_bodies", _raise(kind))
    batch = WriteBack(
        deal_id=acme,
        key="wf-bug",
        tasks=[TaskSpec(subject="bug", owner_email="olga.ops@example.com", key="bug-t0")],
    )
    with pytest.raises(kind) as caught:
        connector.write_back(batch)
    assert not isinstance(caught.value, CrmError)


def test_an_error_raised_inside_the_client_library_is_translated(
    connector: SalesforceConnector,
) -> None:
    """The same KeyError raised inside simple-salesforce is the client's: it becomes Rejected."""
    with pytest.raises(Rejected) as caught:
        connector._call("Opportunity", "", lambda _sf: format_soql("SELECT {missing}"))
    assert isinstance(caught.value.__cause__, KeyError)


# -- transient failures ------------------------------------------------------------------
def test_lock_contention_is_retried_until_the_write_lands(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """UNABLE_TO_LOCK_ROW is retried with growing backoff; the note and batch land."""
    sandbox.control("POST", "locks", {"count": 2})
    note_id = connector.add_note(acme, NoteSpec(body="after the lock", key="lock-n"))
    assert len(sandbox.recorded_sleeps) == 2
    assert sandbox.recorded_sleeps[1] > sandbox.recorded_sleeps[0] * 0.9
    sandbox.control("POST", "locks", {"count": 1})
    receipt = connector.write_back(
        WriteBack(deal_id=acme, key="k", notes=[NoteSpec(body="b", key="lock-b")])
    )
    notes = {n["Handoff_Key__c"]: n["Id"] for n in sandbox.activity(acme)["notes"]}
    assert notes["lock-n"] == note_id
    assert notes["lock-b"] == receipt.note_ids[0]


def test_lock_contention_that_outlasts_retries_is_record_locked(
    sandbox: Sandbox, acme: str
) -> None:
    """When the row stays locked past max_retries, RecordLocked is raised."""
    connector = connector_for(sandbox, auth_for(sandbox, "session"), max_retries=1)
    sandbox.control("POST", "locks", {"count": 5})
    with pytest.raises(RecordLocked):
        connector.update_deal(acme, {"handoff_status": "locked"}, key="k")


def test_server_errors_are_retried_and_outages_become_unavailable(
    sandbox: Sandbox, acme: str
) -> None:
    """A 503 that clears during backoff is survived; one that persists is Unavailable."""
    sandbox.faults(down=True)
    recovering = connector_for(
        sandbox, auth_for(sandbox, "session"), sleep=lambda _s: sandbox.faults()
    )
    assert recovering.get_deal(acme).id == acme
    sandbox.faults(error_rate=1.0)
    failing = connector_for(sandbox, auth_for(sandbox, "session"), max_retries=2)
    with pytest.raises(Unavailable) as caught:
        failing.get_deal(acme)
    assert caught.value.status == 500
    assert len(sandbox.recorded_sleeps) == 2


def test_exhausted_daily_allocation_is_rate_limited(
    sandbox: Sandbox, connector: SalesforceConnector, acme: str
) -> None:
    """REQUEST_LIMIT_EXCEEDED (403) becomes RateLimited, for the allocation and bursts."""
    sandbox.control("POST", "limits", {"allocation": 100, "used": 100})
    with pytest.raises(RateLimited):
        connector.get_deal(acme)
    sandbox.control("POST", "limits", {"allocation": 15000, "used": 0})
    sandbox.faults(burst_429=1)
    with pytest.raises(RateLimited):
        connector.get_deal(acme)


def test_calls_slow_down_near_the_daily_allocation(sandbox: Sandbox, acme: str) -> None:
    """Once Sforce-Limit-Info shows 90% used, each call waits slow_down_s first."""
    connector = connector_for(sandbox, auth_for(sandbox, "session"), slow_down_s=0.25)
    connector.get_deal(acme)
    assert sandbox.recorded_sleeps == []
    sandbox.control("POST", "limits", {"allocation": 1000, "used": 950})
    connector.get_deal(acme)
    connector.get_deal(acme)
    assert sandbox.recorded_sleeps == [0.25]
    assert connector.api_usage == (952, 1000)


def test_connection_refused_is_unavailable(sandbox: Sandbox) -> None:
    """Nothing listening on the instance URL surfaces as Unavailable after retries."""
    auth = SalesforceAuth(
        mode="session", session_id="x", instance_url=f"https://127.0.0.1:{free_port()}"
    )
    connector = connector_for(sandbox, auth, max_retries=1)
    with pytest.raises(Unavailable):
        connector.get_deal("006Hd0000000001")


# -- change feed -------------------------------------------------------------------------
def _feed(sandbox: Sandbox, mode: str = "client_credentials") -> SalesforceConnector:
    """A connector whose feed takes a second as soon as the server's clock has left it
    (the sandbox commits instantly, so the production settle delay is not needed)."""
    return connector_for(sandbox, auth_for(sandbox, mode), settle_s=0)


def _let_the_current_second_close() -> None:
    # One second for the stamp's second to end, one more because uvicorn refreshes its
    # cached Date header only once a second.
    time.sleep(2.05)


def _drain(connector: SalesforceConnector, cursor: str | None) -> str | None:
    page = connector.read_changes(cursor, limit=2000)
    while not page.done:
        page = connector.read_changes(page.cursor, limit=2000)
    return page.cursor


def _sales_rep_token(sandbox: Sandbox) -> str:
    """A session for sam.rep, a CRM user who is not the connector's API user."""
    sandbox.control(
        "POST", "credentials", {"username": "sam.rep@example.com", "password": "pw-sam"}
    )
    token = sandbox.http.post(
        f"{sandbox.base}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": "handoff-sandbox-consumer",
            "client_secret": "handoff-sandbox-secret",
            "username": "sam.rep@example.com",
            "password": "pw-sam",
        },
    ).json()["access_token"]
    return str(token)


def _burst_as_sales_rep(sandbox: Sandbox, count: int) -> list[str]:
    """`count` Opportunities created by sam.rep, 200 per collection."""
    token = _sales_rep_token(sandbox)
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [
            {"attributes": {"type": "Opportunity"}, "Name": f"Burst {i}",
             "StageName": "Prospecting", "CloseDate": "2026-12-31", "Amount": float(i)}
            for i in range(start, min(count, start + 200))
        ]  # fmt: skip
        response = sandbox.http.post(
            f"{sandbox.base}{API}/composite/sobjects",
            json={"allOrNone": True, "records": records},
            headers={"Authorization": f"Bearer {token}"},
        )
        ids += [r["id"] for r in response.json()]
    return ids


def test_change_feed_reads_a_burst_without_misses_or_duplicates(sandbox: Sandbox) -> None:
    """1,000 changed deals read in pages of 150, resumed by a new connector mid-stream."""
    connector = _feed(sandbox)
    _let_the_current_second_close()
    start = _drain(connector, None)
    burst = _burst_as_sales_rep(sandbox, 1000)
    _let_the_current_second_close()
    pages = []
    cursor = start
    for _ in range(3):
        page = connector.read_changes(cursor, limit=150)
        pages.append(page.changes)
        cursor = page.cursor
    resumed = _feed(sandbox, "jwt_bearer")
    page = resumed.read_changes(cursor, limit=150)
    pages.append(page.changes)
    while not page.done:
        page = resumed.read_changes(page.cursor, limit=150)
        pages.append(page.changes)
    seen = [c.deal_id for p in pages for c in p]
    assert len(seen) == len(set(seen)) == 1000
    assert set(seen) == set(burst)
    assert not any(c.by_handoff for p in pages for c in p)
    assert pages[0][0].fields["name"] == "Burst 0"
    # At least one page boundary falls between two changes with the same timestamp.
    full = [p for p in pages if p]
    assert any(a[-1].changed_at == b[0].changed_at for a, b in pairwise(full))


def test_change_feed_flags_the_connectors_own_writes(sandbox: Sandbox, acme: str) -> None:
    """A deal the connector itself updated comes back marked by_handoff (an echo)."""
    connector = _feed(sandbox)
    _let_the_current_second_close()
    cursor = _drain(connector, None)
    other = str(seeded_opportunity(sandbox, "Globex pilot")["Id"])
    connector.update_deal(acme, {"handoff_status": "echo"}, key="k")
    sandbox.http.patch(
        f"{sandbox.base}{API}/sobjects/Opportunity/{other}",
        json={"Handoff_Status__c": "typed by the sales rep"},
        headers={"Authorization": f"Bearer {_sales_rep_token(sandbox)}"},
    )
    assert connector.read_changes(cursor).changes == []  # their second is still open
    _let_the_current_second_close()
    changes = {c.deal_id: c for c in connector.read_changes(cursor).changes}
    assert changes[acme].by_handoff is True
    assert changes[acme].fields["handoff_status"] == "echo"
    assert changes[other].by_handoff is False
    assert set(changes) == {acme, other}

"""The Salesforce sandbox keeps the documented REST and SOAP wire contract.

Expected shapes come from the Salesforce REST/SOAP docs and the verified wire facts of
simple-salesforce 1.12.10, not from the sandbox itself. The checks that cover a route of
their own (logins, query pages, upserts by external id) live in
``test_salesforce_conformance.py``, which checks that every route is covered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from simple_salesforce.api import Salesforce
from support.salesforce import (
    API,
    Sandbox,
    issued_session_id,
    running_sandbox,
)

from connectors.salesforce import LoginHostAdapter
from sandbox.salesforce import make_ca

ID18 = re.compile(r"^[0-9A-Za-z]{18}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sf-fidelity")) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: Sandbox) -> Iterator[Sandbox]:
    yield server
    server.reset()


def _sf(sandbox: Sandbox, **auth: Any) -> Salesforce:
    session = requests.Session()
    session.verify, session.trust_env = str(sandbox.ca_pem), False
    session.mount("https://", LoginHostAdapter(sandbox.host, 10))
    if not auth:
        auth = {"session_id": "handoff-sandbox", "instance_url": sandbox.base}
    return Salesforce(session=session, **auth)


def _assert_error_list(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert isinstance(body, list)
    assert body[0]["errorCode"] == code
    assert isinstance(body[0]["message"], str)


# -- queries -----------------------------------------------------------------------------
def test_count_query_reports_total_size(sandbox: Sandbox) -> None:
    """SELECT COUNT() answers with totalSize and no records."""
    body = _sf(sandbox).query("SELECT COUNT() FROM User WHERE IsActive = true")
    assert body["totalSize"] >= 10
    assert body["records"] == []


# -- sObject rows ------------------------------------------------------------------------
def test_create_get_update_delete_use_documented_statuses(sandbox: Sandbox) -> None:
    """Create 201 {id,success,errors}; update and delete 204; then GET is a 404 list."""
    opp = sandbox.rest(
        "GET", f"{API}/query/", params={"q": "SELECT Id FROM Opportunity LIMIT 1"}
    ).json()["records"][0]["Id"]
    created = sandbox.rest("POST", f"{API}/sobjects/Note/", json={"Title": "t", "ParentId": opp})
    assert created.status_code == 201
    body = created.json()
    assert (body["success"], body["errors"]) == (True, [])
    assert ID18.match(body["id"])
    assert body["id"].startswith("002")
    record = sandbox.rest("GET", f"{API}/sobjects/Note/{body['id'][:15]}").json()
    assert record["Id"] == body["id"]
    assert STAMP.match(record["SystemModstamp"])
    assert STAMP.match(record["CreatedDate"])
    users = _sf(sandbox).query(
        "SELECT Id FROM User WHERE Username = 'handoff.integration@example.com'"
    )
    assert record["LastModifiedById"] == users["records"][0]["Id"]
    patched = sandbox.rest("PATCH", f"{API}/sobjects/Note/{body['id']}", json={"Body": "b"})
    assert (patched.status_code, patched.content) == (204, b"")
    assert sandbox.rest("DELETE", f"{API}/sobjects/Note/{body['id']}").status_code == 204
    _assert_error_list(
        sandbox.rest("GET", f"{API}/sobjects/Note/{body['id']}"), 404, "ENTITY_IS_DELETED"
    )


def test_describe_lists_fields_and_external_ids(sandbox: Sandbox) -> None:
    """describe reports each field's type, and Handoff_Key__c as a unique external id."""
    fields = {f["name"]: f for f in _sf(sandbox).Task.describe()["fields"]}
    assert fields["Handoff_Key__c"]["externalId"] is True
    assert fields["Handoff_Key__c"]["unique"] is True
    assert fields["Id"]["type"] == "id"
    assert fields["Id"]["updateable"] is False
    stages = _sf(sandbox).Opportunity.describe()["fields"]
    picklist = next(f for f in stages if f["name"] == "StageName")["picklistValues"]
    assert "Closed Won" in [p["value"] for p in picklist]


def test_updated_lists_ids_changed_in_a_window(sandbox: Sandbox) -> None:
    """sobjects/Opportunity/updated answers {ids, latestDateCovered}."""
    sf = _sf(sandbox)
    start = datetime.now(UTC) - timedelta(minutes=1)
    new_id = sf.Opportunity.create(
        {"Name": "Window", "StageName": "Prospecting", "CloseDate": "2026-12-01"}
    )["id"]
    body = sf.Opportunity.updated(start, datetime.now(UTC) + timedelta(minutes=1))
    assert new_id in body["ids"]
    assert STAMP.match(body["latestDateCovered"])


# -- errors and limits ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/query/?q=SELECT+Id+FROM", None, 400, "MALFORMED_QUERY"),
        ("GET", "/query/?q=SELECT+Bogus__c+FROM+Opportunity", None, 400, "INVALID_FIELD"),
        (
            "POST",
            "/sobjects/Opportunity/",
            {"StageName": "Prospecting"},
            400,
            "REQUIRED_FIELD_MISSING",
        ),
        ("POST", "/sobjects/Account/", {"Name": "x" * 256}, 400, "STRING_TOO_LONG"),
        ("POST", "/sobjects/Account/", {"Name": "a", "Bogus__c": 1}, 400, "INVALID_FIELD"),
        (
            "POST",
            "/sobjects/Opportunity/",
            {
                "Name": "n",
                "StageName": "Prospecting",
                "CloseDate": "2026-01-01",
                "Discount_Percent__c": -5,
            },
            400,
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        ),
        ("GET", "/sobjects/Opportunity/006Hd00000ZZZZZ", None, 404, "NOT_FOUND"),
    ],
)
def test_errors_are_lists_with_error_codes(
    sandbox: Sandbox, method: str, path: str, body: Any, status: int, code: str
) -> None:
    """Every REST error body is [{"message","errorCode","fields"}] with the right status."""
    _assert_error_list(sandbox.rest(method, API + path, json=body), status, code)


def test_duplicate_external_id_is_duplicate_value(sandbox: Sandbox) -> None:
    """Creating a second Task with a unique Handoff_Key__c value is DUPLICATE_VALUE."""
    assert (
        sandbox.rest("POST", f"{API}/sobjects/Task/", json={"Handoff_Key__c": "dup"}).status_code
        == 201
    )
    again = sandbox.rest("POST", f"{API}/sobjects/Task/", json={"Handoff_Key__c": "dup"})
    _assert_error_list(again, 400, "DUPLICATE_VALUE")
    assert again.json()[0]["fields"] == ["Handoff_Key__c"]


def test_bad_session_is_401_invalid_session_id_list(sandbox: Sandbox) -> None:
    """A bad bearer token is a 401 list with INVALID_SESSION_ID (never a bare object)."""
    response = sandbox.rest("GET", f"{API}/limits/", headers={"Authorization": "Bearer nope"})
    _assert_error_list(response, 401, "INVALID_SESSION_ID")


def test_limit_info_header_counts_every_call_and_403_when_spent(sandbox: Sandbox) -> None:
    """Sforce-Limit-Info: api-usage=N/M on every response; spent allocation is 403."""
    sandbox.control("POST", "limits", {"allocation": 5, "used": 2})
    seen = [
        sandbox.rest("GET", f"{API}/limits/").headers["Sforce-Limit-Info"],
        sandbox.rest("GET", f"{API}/sobjects/Opportunity/006Hd00000ZZZZZ").headers[
            "Sforce-Limit-Info"
        ],
        sandbox.rest("PATCH", f"{API}/sobjects/Task/Handoff_Key__c/lim", json={}).headers[
            "Sforce-Limit-Info"
        ],
    ]
    assert seen == ["api-usage=3/5", "api-usage=4/5", "api-usage=5/5"]
    spent = sandbox.rest("GET", f"{API}/limits/")
    _assert_error_list(spent, 403, "REQUEST_LIMIT_EXCEEDED")
    assert spent.headers["Sforce-Limit-Info"] == "api-usage=5/5"


@pytest.mark.parametrize(
    ("settings", "status", "code"),
    [
        ({"burst_429": 1}, 403, "REQUEST_LIMIT_EXCEEDED"),
        ({"down": True}, 503, "SERVER_UNAVAILABLE"),
        ({"error_rate": 1.0}, 500, "UNKNOWN_EXCEPTION"),
    ],
)
def test_faults_answer_as_salesforce_would(
    sandbox: Sandbox, settings: dict[str, Any], status: int, code: str
) -> None:
    """Injected faults use Salesforce's own statuses and error lists (no 429s)."""
    sandbox.faults(**settings)
    _assert_error_list(sandbox.rest("GET", f"{API}/limits/"), status, code)


def test_lock_fault_is_unable_to_lock_row(sandbox: Sandbox) -> None:
    """A held row lock answers 400 UNABLE_TO_LOCK_ROW, then the write goes through."""
    sandbox.control("POST", "locks", {"count": 1})
    url = f"{API}/sobjects/Task/Handoff_Key__c/locked"
    _assert_error_list(sandbox.rest("PATCH", url, json={}), 400, "UNABLE_TO_LOCK_ROW")
    assert sandbox.rest("PATCH", url, json={}).status_code == 201


# -- logins ------------------------------------------------------------------------------
def test_expired_sessions_get_401_and_a_new_login_works(sandbox: Sandbox) -> None:
    """expire_sessions revokes issued ids once: the old one is 401, a re-login is fresh."""
    sf = _sf(
        sandbox,
        username="handoff.integration@example.com",
        password="handoff-sandbox",
        security_token="SANDBOXTOKEN",
    )
    old = sf.session_id
    sandbox.faults(expire_sessions=True)
    stale = sandbox.rest("GET", f"{API}/limits/", headers={"Authorization": f"Bearer {old}"})
    _assert_error_list(stale, 401, "INVALID_SESSION_ID")
    assert sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
    assert sf.session_id != old


# -- collections ---------------------------------------------------------------------------
def test_collections_report_per_record_status_codes(sandbox: Sandbox) -> None:
    """Collections answer 200 with a result per record; errors use statusCode."""
    records = [
        {"attributes": {"type": "Account"}, "Name": "Coll ok"},
        {"attributes": {"type": "Account"}, "Industry": "no name"},
    ]
    response = sandbox.rest(
        "POST", f"{API}/composite/sobjects", json={"allOrNone": False, "records": records}
    )
    assert response.status_code == 200
    ok, bad = response.json()
    assert (ok["success"], ok["errors"], ID18.match(ok["id"]) is not None) == (True, [], True)
    assert bad["success"] is False
    assert bad["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert bad["errors"][0]["fields"] == ["Name"]
    assert "errorCode" not in bad["errors"][0]
    deleted = sandbox.rest("DELETE", f"{API}/composite/sobjects", params={"ids": ok["id"]})
    assert deleted.json() == [{"id": ok["id"], "success": True, "errors": []}]


def test_all_or_none_collections_roll_back_every_record(sandbox: Sandbox) -> None:
    """With allOrNone, one failure rolls back the rest (ALL_OR_NONE_OPERATION_ROLLED_BACK)."""
    records = [
        {"attributes": {"type": "Task"}, "Handoff_Key__c": "aon-1", "Subject": "fine"},
        {"attributes": {"type": "Task"}, "Handoff_Key__c": "aon-2", "Subject": "s" * 300},
    ]
    response = sandbox.rest(
        "PATCH",
        f"{API}/composite/sobjects/Task/Handoff_Key__c",
        json={"allOrNone": True, "records": records},
    )
    first, second = response.json()
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sandbox.rest("GET", f"{API}/sobjects/Task/Handoff_Key__c/aon-1").status_code == 404


# -- the sandbox's own surface -------------------------------------------------------------
def test_read_model_and_stats(sandbox: Sandbox) -> None:
    """The activity read model groups a deal's rows; stats count by method and template."""
    sandbox.control("POST", "stats/reset")
    opp = _sf(sandbox).query("SELECT Id FROM Opportunity WHERE Name = 'Globex pilot'")["records"][
        0
    ]["Id"]
    sandbox.rest("PATCH", f"{API}/sobjects/Task/Handoff_Key__c/rm-1", json={"WhatId": opp})
    activity = sandbox.activity(opp)
    assert activity["opportunity"]["Name"] == "Globex pilot"
    assert [t["Handoff_Key__c"] for t in activity["tasks"]] == ["rm-1"]
    assert sandbox.control("GET", "stats") == {
        "GET /services/data/v{ver}/query": 1,
        "PATCH /services/data/v{ver}/sobjects/{object}/{field}/{value}": 1,
    }


def test_state_persists_in_sqlite_across_restarts(tmp_path: Path) -> None:
    """A sandbox restarted on the same store file still has the records written before."""
    store = tmp_path / "org.sqlite3"
    with running_sandbox(tmp_path, store) as first:
        first.rest("PATCH", f"{API}/sobjects/Task/Handoff_Key__c/persist", json={"Subject": "kept"})
    with running_sandbox(tmp_path, store) as second:
        assert (
            second.rest("GET", f"{API}/sobjects/Task/Handoff_Key__c/persist").json()["Subject"]
            == "kept"
        )


def test_make_ca_writes_a_usable_ca_and_reuses_it(tmp_path: Path) -> None:
    """make_ca writes sandbox-ca.pem with KeyUsage and SubjectKeyIdentifier, once."""
    files = make_ca(tmp_path)
    assert files.ca_pem == tmp_path / "sandbox-ca.pem"
    ca = x509.load_pem_x509_certificate(files.ca_pem.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    before = files.ca_pem.read_bytes()
    assert make_ca(tmp_path).ca_pem.read_bytes() == before


def test_composite_runs_subrequests_with_references_as_one_call(sandbox: Sandbox) -> None:
    """POST composite: results per referenceId, @{ref.id} resolved, counted as one call."""
    sandbox.control("POST", "limits", {"allocation": 100, "used": 0})
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{API}/sobjects/Account/",
                "referenceId": "acct",
                "body": {"Name": "Composite Co"},
            },
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Task/Handoff_Key__c/comp-1",
                "referenceId": "task",
                "body": {"WhatId": "@{acct.id}"},
            },
            {
                "method": "GET",
                "url": f"{API}/sobjects/Account/@{{acct.id}}?fields=Name",
                "referenceId": "read",
            },
        ],
    }
    response = sandbox.rest("POST", f"{API}/composite", json=body)
    results = {r["referenceId"]: r for r in response.json()["compositeResponse"]}
    assert [results[r]["httpStatusCode"] for r in ("acct", "task", "read")] == [201, 201, 200]
    assert results["read"]["body"]["Name"] == "Composite Co"
    assert response.headers["Sforce-Limit-Info"] == "api-usage=1/100"


def test_call_stats_count_a_composite_once_and_its_subrequests_by_route(
    sandbox: Sandbox,
) -> None:
    """/_sandbox/stats/calls: a composite is one API call, a composite batch one per
    subrequest, a login none; every subrequest is counted by route with its sObject."""
    sandbox.control("POST", "stats/reset")
    account = {"method": "POST", "url": f"{API}/sobjects/Account/", "body": {"Name": "Calls"}}
    body = {
        "compositeRequest": [
            {**account, "referenceId": "acct"},
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Task/Handoff_Key__c/calls-1",
                "referenceId": "task",
                "body": {"WhatId": "@{acct.id}"},
            },
            {"method": "GET", "url": f"{API}/sobjects/Account/@{{acct.id}}", "referenceId": "r"},
        ]
    }
    assert sandbox.rest("POST", f"{API}/composite", json=body).status_code == 200
    reads = [{"method": "GET", "url": "v59.0/query/?q=SELECT Id FROM User"}] * 2
    assert sandbox.rest("POST", f"{API}/composite/batch", json={"batchRequests": reads}).ok
    issued_session_id(sandbox)  # a login: a request, not an API call
    calls = sandbox.control("GET", "stats/calls")
    assert calls["total"] == 1 + 2
    assert calls["subrequests"] == {
        "POST /services/data/v{ver}/sobjects/Account/": 1,
        "PATCH /services/data/v{ver}/sobjects/Task/{field}/{value}": 1,
        "GET /services/data/v{ver}/sobjects/Account/{id}": 1,
        "GET /services/data/v{ver}/query": 2,
    }
    assert sandbox.control("GET", "stats")["POST /services/oauth2/token"] == 1
    sandbox.control("POST", "stats/reset")
    assert sandbox.control("GET", "stats/calls") == {"total": 0, "subrequests": {}}


def test_a_lost_response_is_applied_then_answered_504_and_reads_are_never_lost(
    sandbox: Sandbox,
) -> None:
    """/_sandbox/lost-responses: the next write is applied, then answered 504; a query
    and a composite of GETs pass untouched and do not use up the count."""
    sandbox.control("POST", "lost-responses", {"count": 1})
    query = sandbox.rest("GET", f"{API}/query/", params={"q": "SELECT Id FROM User"})
    assert query.status_code == 200
    read = {"compositeRequest": [{"method": "GET", "url": f"{API}/limits/", "referenceId": "l"}]}
    assert sandbox.rest("POST", f"{API}/composite", json=read).status_code == 200
    url = f"{API}/sobjects/Task/Handoff_Key__c/lost-1"
    lost = sandbox.rest("PATCH", url, json={"Subject": "applied"})
    assert (lost.status_code, lost.json()[0]["errorCode"]) == (504, "GATEWAY_TIMEOUT")
    assert sandbox.rest("GET", url).json()["Subject"] == "applied"
    again = sandbox.rest("PATCH", url, json={"Subject": "applied"})
    assert (again.status_code, again.json()["created"]) == (200, False)


def test_composite_all_or_none_halts_and_rolls_back(sandbox: Sandbox) -> None:
    """A failing subrequest under allOrNone undoes earlier writes (PROCESSING_HALTED)."""
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Task/Handoff_Key__c/halt-1",
                "referenceId": "ok",
                "body": {},
            },
            {"method": "POST", "url": f"{API}/sobjects/Account/", "referenceId": "bad", "body": {}},
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Task/Handoff_Key__c/halt-2",
                "referenceId": "never",
                "body": {},
            },
        ],
    }
    results = sandbox.rest("POST", f"{API}/composite", json=body).json()["compositeResponse"]
    codes = [r["body"][0]["errorCode"] for r in results]
    assert codes == ["PROCESSING_HALTED", "REQUIRED_FIELD_MISSING", "PROCESSING_HALTED"]
    assert sandbox.rest("GET", f"{API}/sobjects/Task/Handoff_Key__c/halt-1").status_code == 404

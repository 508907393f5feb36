"""The Salesforce sandbox answers as the REST API Developer Guide and SOQL reference document.

Each expectation comes from a documented request/response example kept under
``tests/sandbox/specs/salesforce/`` (every file names its source page), driven through the
real simple-salesforce client or ``requests`` with the same trusted TLS session. The last
tests check that every route of the app, and every sub-path its ``sobjects`` handler
dispatches to, is covered by a documented endpoint of ``endpoints.json`` or a named test.
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceMoreThanOneRecord
from simple_salesforce.format import format_soql
from starlette.requests import Request
from support.salesforce import (
    API,
    JWT_CONSUMER_KEY,
    TOKEN,
    Sandbox,
    rsa_key_and_certificate,
    running_sandbox,
    sales_rep_session,
)

from connectors.salesforce import LoginHostAdapter
from sandbox.salesforce import create_app
from sandbox.salesforce_rest import SOBJECT_METHODS

SPECS = Path(__file__).parent / "specs" / "salesforce"


def spec(name: str) -> Any:
    return json.loads((SPECS / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sf-conformance")) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: Sandbox) -> Iterator[Sandbox]:
    yield server
    server.reset()


@pytest.fixture
def sf(server: Sandbox) -> Iterator[Salesforce]:
    session = requests.Session()
    session.verify, session.trust_env = str(server.ca_pem), False
    session.mount("https://", LoginHostAdapter(server.host, 10))
    yield Salesforce(session=session, session_id=TOKEN, instance_url=server.base)
    session.close()


def assert_error_list(response: requests.Response, status: int, code: str) -> None:
    """The documented error body: a JSON list of {message, errorCode}, with the status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and body, body
    for item in body:
        assert set(spec("errors")["error_item_keys"]) <= set(item)
    assert body[0]["errorCode"] == code, body


# -- what the sandbox does not serve ------------------------------------------------------
@pytest.mark.parametrize(
    "case", spec("errors")["unserved"], ids=lambda c: f"{c['method']} {c['path']}"
)
def test_unserved_paths_and_methods_answer_the_salesforce_error_list(
    sandbox: Sandbox, case: dict[str, Any]
) -> None:
    """A path or method the sandbox does not serve gets NOT_FOUND/METHOD_NOT_ALLOWED lists."""
    response = sandbox.rest(case["method"], case["path"])
    assert_error_list(response, case["status"], case["errorCode"])
    if case["status"] == 405:
        assert response.headers.get("Allow")


@pytest.mark.parametrize(
    "case", spec("errors")["bad_bodies"], ids=lambda c: f"{c['path']} {c['body']}"
)
def test_malformed_bodies_are_json_parser_errors(sandbox: Sandbox, case: dict[str, Any]) -> None:
    """A body that is not the JSON the resource takes is a 400 JSON_PARSER_ERROR list."""
    response = sandbox.rest(
        case["method"],
        case["path"],
        data=case["body"].encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_error_list(response, case["status"], case["errorCode"])


def test_control_endpoint_validation_errors_use_the_error_list(sandbox: Sandbox) -> None:
    """Even the sandbox's own controls answer bad input with a 400 error list, not FastAPI's."""
    response = sandbox.http.post(f"{sandbox.base}/_sandbox/faults", json={"latency_ms": -1})
    assert_error_list(response, 400, "JSON_PARSER_ERROR")
    assert "latency_ms" in response.json()[0]["message"]


def test_an_unexpected_exception_is_unknown_exception_and_keeps_the_connection(
    sandbox: Sandbox,
) -> None:
    """A bug in a handler answers 500 UNKNOWN_EXCEPTION as a list; the next call still works."""
    app = sandbox.app

    async def broken(_: Request) -> None:
        raise KeyError("boom")

    app.add_api_route("/services/data/v59.0/_broken", broken, methods=["GET"])
    assert_error_list(sandbox.rest("GET", f"{API}/_broken"), 500, "UNKNOWN_EXCEPTION")
    assert sandbox.rest("GET", f"{API}/limits/").status_code == 200


def test_invalid_session_is_401_invalid_session_id(sandbox: Sandbox) -> None:
    """A wrong bearer token is 401 INVALID_SESSION_ID as a list (simple-salesforce needs [0])."""
    response = sandbox.http.get(
        f"{sandbox.base}{API}/sobjects/Account/describe",
        headers={"Authorization": "Bearer wrong"},
    )
    assert_error_list(response, 401, "INVALID_SESSION_ID")


# -- SOQL ---------------------------------------------------------------------------------
SOQL = spec("soql")


def soql(sf: Salesforce, name: str) -> Any:
    return sf.query(SOQL["examples"][name])


def test_child_to_parent_paths_nest_the_parent_record(sf: Salesforce) -> None:
    """``Account.Name`` comes back as a nested Account with attributes; WHERE can use a path."""
    result = soql(sf, "child_to_parent")
    accounts = {a["Id"]: a for a in sf.query("SELECT Id, Name, Industry FROM Account")["records"]}
    contacts = sf.query("SELECT Id, AccountId FROM Contact")["records"]
    expected = {
        c["Id"]
        for c in contacts
        if c["AccountId"] and accounts[c["AccountId"]]["Industry"] == "Manufacturing"
    }
    assert {r["Id"] for r in result["records"]} == expected and expected
    for record in result["records"]:
        parent = record["Account"]
        assert parent["attributes"]["type"] == "Account"
        assert re.fullmatch(rf"{API}/sobjects/Account/\w{{18}}", parent["attributes"]["url"])
        assert parent["Name"] == accounts[parent["attributes"]["url"].split("/")[-1]]["Name"]


def test_parent_to_child_subqueries_are_nested_query_results(sf: Salesforce) -> None:
    """``(SELECT LastName FROM Contacts)`` answers a nested query result, or null if none."""
    result = soql(sf, "parent_to_child")
    contacts = sf.query("SELECT LastName, AccountId FROM Contact")["records"]
    accounts = {a["Name"]: a["Id"] for a in sf.query("SELECT Id, Name FROM Account")["records"]}
    for record in result["records"]:
        mine = sorted(c["LastName"] for c in contacts if c["AccountId"] == accounts[record["Name"]])
        nested = record["Contacts"]
        if not mine:
            assert nested is None
            continue
        assert set(SOQL["query_result_keys"]) <= set(nested)
        assert nested["totalSize"] == len(mine) and nested["done"] is True
        assert sorted(c["LastName"] for c in nested["records"]) == mine


def test_owner_email_orders_and_filters_through_the_relationship(sf: Salesforce) -> None:
    """Parent paths work in ORDER BY and WHERE (``Owner.Email``, ``Account.Name``)."""
    rows = sf.query(
        "SELECT Name, Account.Name FROM Opportunity "
        "WHERE Owner.Email = 'sam.rep@example.com' ORDER BY Account.Name DESC"
    )["records"]
    names = [r["Account"]["Name"] for r in rows]
    assert names == sorted(names, reverse=True) and len(names) >= 3


def test_count_and_count_of_a_field(sf: Salesforce) -> None:
    """COUNT() reports totalSize with no records; COUNT(Id) is an AggregateResult expr0."""
    contacts = sf.query("SELECT Id FROM Contact")["totalSize"]
    counted = soql(sf, "count")
    assert (counted["totalSize"], counted["records"]) == (contacts, [])
    names = [a["Name"] for a in sf.query("SELECT Name FROM Account")["records"]]
    record = soql(sf, "count_field")["records"][0]
    assert record["attributes"] == SOQL["aggregate_record"]["attributes"]
    assert record["expr0"] == sum(1 for n in names if n.lower().startswith("a"))


def test_group_by_answers_one_aggregate_result_per_group(sf: Salesforce) -> None:
    """GROUP BY StageName with COUNT(Name) gives one row per stage with its count."""
    stages = [o["StageName"] for o in sf.query("SELECT StageName FROM Opportunity")["records"]]
    rows = soql(sf, "group_by")["records"]
    assert {r["StageName"]: r["expr0"] for r in rows} == {s: stages.count(s) for s in stages}


def test_sum_avg_min_max_with_aliases(sf: Salesforce) -> None:
    """SUM/AVG/MIN/MAX compute over the rows; an alias names its column, others are exprN."""
    amounts = [o["Amount"] for o in sf.query("SELECT Amount FROM Opportunity")["records"]]
    present = [a for a in amounts if a is not None]
    assert soql(sf, "avg")["records"][0]["expr0"] == pytest.approx(sum(present) / len(present))
    row = sf.query("SELECT SUM(Amount) total, MIN(Amount), MAX(CloseDate) latest FROM Opportunity")[
        "records"
    ][0]
    dates = [o["CloseDate"] for o in sf.query("SELECT CloseDate FROM Opportunity")["records"]]
    assert row["total"] == pytest.approx(sum(present))
    assert row["expr0"] == min(present)
    assert row["latest"] == max(dates)


def test_having_and_ordering_by_an_aggregate(sf: Salesforce) -> None:
    """HAVING filters groups by an aggregate; ORDER BY an aggregate sorts the groups."""
    opps = sf.query("SELECT AccountId, Amount FROM Opportunity")["records"]
    totals: dict[str | None, float] = {}
    for o in opps:
        if o["Amount"] is not None:
            totals[o["AccountId"]] = totals.get(o["AccountId"], 0.0) + o["Amount"]
    rows = sf.query(
        "SELECT AccountId, SUM(Amount) total FROM Opportunity GROUP BY AccountId "
        "HAVING SUM(Amount) > 20000 ORDER BY SUM(Amount) DESC"
    )["records"]
    expected = sorted(((a, t) for a, t in totals.items() if t > 20000), key=lambda pair: -pair[1])
    assert [(r["AccountId"], r["total"]) for r in rows] == expected and expected


def test_date_functions_group_and_filter(sf: Salesforce) -> None:
    """CALENDAR_YEAR(CreatedDate) groups; CALENDAR_MONTH(CloseDate) filters by month."""
    rows = soql(sf, "date_function")["records"]
    opps = sf.query("SELECT Amount, CreatedDate, CloseDate FROM Opportunity")["records"]
    years = {int(o["CreatedDate"][:4]) for o in opps}
    assert {r["expr0"] for r in rows} == years
    december = sf.query("SELECT COUNT() FROM Opportunity WHERE CALENDAR_MONTH(CloseDate) = 12")
    assert december["totalSize"] == sum(1 for o in opps if o["CloseDate"][5:7] == "12")


def test_date_literals_select_relative_ranges(sf: Salesforce) -> None:
    """TODAY, LAST_N_DAYS:n and NEXT_N_DAYS:n compare against today's date in UTC."""
    created = sf.Account.create({"Name": "Dated Co"})["id"]

    def found(where: str) -> bool:
        select = f"SELECT Id FROM Account WHERE {where} AND Id = {{}}"  # noqa: S608 - test SOQL
        text = format_soql(select, created)
        return bool(sf.query(text)["totalSize"])

    try:
        assert found("CreatedDate = TODAY")
        assert not found("CreatedDate = YESTERDAY")
        assert found("CreatedDate = LAST_N_DAYS:1")
        assert not found("CreatedDate > NEXT_N_DAYS:2")
        assert found("CreatedDate = THIS_MONTH")
        assert found("CreatedDate < TOMORROW")
    finally:
        sf.Account.delete(created)


def test_fields_standard_and_all(sf: Salesforce, sandbox: Sandbox) -> None:
    """FIELDS(STANDARD) lists standard fields; FIELDS(ALL) adds custom ones and needs LIMIT 200."""
    describe = sf.Account.describe()
    names = [f["name"] for f in describe["fields"]]
    standard = soql(sf, "fields_standard")["records"][0]
    assert set(standard) - {"attributes"} == {n for n in names if not n.endswith("__c")}
    every = soql(sf, "fields_all")["records"][0]
    assert set(every) - {"attributes"} == set(names)
    response = sandbox.rest(
        "GET", f"{API}/query/", params={"q": SOQL["examples"]["fields_all_unbounded"]}
    )
    assert_error_list(response, 400, "MALFORMED_QUERY")


@pytest.mark.parametrize(
    ("soql_text", "code"),
    [
        ("SELECT Name, COUNT(Id) FROM Opportunity", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE Nope.Name = 'x'", "INVALID_FIELD"),
        ("SELECT Account.Nope FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id, (SELECT Id FROM Nopes) FROM Account", "INVALID_TYPE"),
        ("SELECT SUM(Name) FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_FORTNIGHTS:2", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE Name = TODAY", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE COUNT(Id) > 1", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = 2026-13-45", "MALFORMED_QUERY"),
    ],
)
def test_queries_salesforce_refuses_get_its_error_codes(
    sandbox: Sandbox, soql_text: str, code: str
) -> None:
    """Malformed or invalid SOQL is a 400 with Salesforce's errorCode, never a 500."""
    assert_error_list(sandbox.rest("GET", f"{API}/query/", params={"q": soql_text}), 400, code)


def test_sosl_search_answers_search_records(sf: Salesforce) -> None:
    """``FIND {Acme}`` answers searchRecords with attributes and Id for matching records."""
    documented = SOQL["search"]["response"]["searchRecords"][0]
    found = sf.search(SOQL["search"]["request"])["searchRecords"]
    accounts = {a["Name"]: a["Id"] for a in sf.query("SELECT Id, Name FROM Account")["records"]}
    assert all(set(documented) <= set(r) for r in found)
    ids = {r["Id"] for r in found}
    assert accounts["Acme Corp"] in ids and accounts["Globex"] not in ids
    quick = sf.quick_search("Globex")["searchRecords"]
    assert accounts["Globex"] in {r["Id"] for r in quick}


def test_sosl_returning_selects_fields_and_filters(sf: Salesforce, sandbox: Sandbox) -> None:
    """RETURNING Object(fields WHERE ...) narrows each object; a one-letter term is refused."""
    found = sf.search(
        "FIND {acme*} IN NAME FIELDS RETURNING Account(Name, Industry), "
        "Opportunity(Name, Amount WHERE Amount > 100000)"
    )["searchRecords"]
    assert [(r["attributes"]["type"], r["Name"]) for r in found] == [("Account", "Acme Corp")]
    assert found[0]["Industry"] == "Manufacturing"
    short = sandbox.rest("GET", f"{API}/search/", params={"q": "FIND {a}"})
    assert_error_list(short, 400, "MALFORMED_SEARCH")


def test_order_is_an_object_name_after_from(sf: Salesforce) -> None:
    """``FROM Order`` names the Order object, while ``ORDER BY`` still sorts."""
    result = sf.query("SELECT Id FROM Order ORDER BY CreatedDate")
    assert result["totalSize"] == sf.query("SELECT COUNT() FROM Order")["totalSize"]


# -- the recycle bin ----------------------------------------------------------------------
REST = spec("rest")


def test_deleted_records_go_to_the_recycle_bin(sf: Salesforce) -> None:
    """query hides a deleted record, queryAll shows it with IsDeleted, deleted/ lists it."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    rid = sf.Account.create({"Name": "Binned Co"})["id"]
    sf.Account.delete(rid)
    soql_text = format_soql("SELECT Id, IsDeleted FROM Account WHERE Id = {}", rid)
    assert sf.query(soql_text)["totalSize"] == 0
    everything = sf.query_all(soql_text, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in everything] == [(rid, True)]
    listed = sf.Account.deleted(start, datetime.now(UTC) + timedelta(minutes=1))
    assert set(REST["deleted_keys"]) <= set(listed)
    mine = [r for r in listed["deletedRecords"] if r["id"] == rid]
    assert len(mine) == 1 and set(mine[0]) == set(REST["deleted_record_keys"])


def test_a_deleted_record_is_entity_is_deleted(sandbox: Sandbox, sf: Salesforce) -> None:
    """Reading or deleting a record in the bin is 404 ENTITY_IS_DELETED; linking to it 400."""
    rid = sf.Account.create({"Name": "Gone Co"})["id"]
    sf.Account.delete(rid)
    assert_error_list(
        sandbox.rest("GET", f"{API}/sobjects/Account/{rid}"), 404, "ENTITY_IS_DELETED"
    )
    again = sandbox.rest("DELETE", f"{API}/sobjects/Account/{rid}")
    assert_error_list(again, 404, "ENTITY_IS_DELETED")
    contact = {"LastName": "Orphan", "AccountId": rid}
    linked = sandbox.rest("POST", f"{API}/sobjects/Contact/", json=contact)
    assert_error_list(linked, 400, "ENTITY_IS_DELETED")


def test_deleting_an_opportunity_bins_its_line_items(sf: Salesforce) -> None:
    """Line items are master-detail children: they follow their opportunity into the bin."""
    opp = sf.Opportunity.create(
        {"Name": "Cascade", "StageName": "Prospecting", "CloseDate": "2026-12-01"}
    )["id"]
    product = sf.query("SELECT Id FROM Product2 WHERE ProductCode = 'SUP-300'")["records"][0]
    line = sf.OpportunityLineItem.create(
        {"OpportunityId": opp, "Product2Id": product["Id"], "Quantity": 1, "UnitPrice": 10}
    )["id"]
    sf.Opportunity.delete(opp)
    text = format_soql("SELECT Id, IsDeleted FROM OpportunityLineItem WHERE Id = {}", line)
    assert sf.query(text)["totalSize"] == 0
    assert sf.query_all(text, include_deleted=True)["records"][0]["IsDeleted"] is True


# -- records, collections and composite ---------------------------------------------------
def test_classic_note_takes_no_custom_fields(sandbox: Sandbox, sf: Salesforce) -> None:
    """As in a real org, a custom field on Note is INVALID_FIELD; it has no external id."""
    parent = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]["Id"]
    note = {"Title": "t", "Body": "b", "ParentId": parent, "Handoff_Key__c": "k-1"}
    refused = sandbox.rest("POST", f"{API}/sobjects/Note/", json=note)
    assert_error_list(refused, 400, "INVALID_FIELD")
    upsert = sandbox.rest("PATCH", f"{API}/sobjects/Note/Handoff_Key__c/k-1", json={"Title": "t"})
    assert_error_list(upsert, 404, "NOT_FOUND")
    names = {f["name"] for f in sf.Note.describe()["fields"]}
    assert not any(n.endswith("__c") for n in names)


def test_collection_insert_refuses_a_record_with_an_id(sf: Salesforce) -> None:
    """Per record, an Id in an insert is INVALID_FIELD; the other records are created."""
    existing = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Id": existing, "Name": "Has Id"},
            {"attributes": {"type": "Account"}, "Name": "No Id"},
        ],
    }
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert results[0]["success"] is False
    error = results[0]["errors"][0]
    assert {k: error[k] for k in REST["insert_with_id_error"]} == REST["insert_with_id_error"]
    assert results[1]["success"] is True
    assert sf.Account.get(results[1]["id"])["Name"] == "No Id"


def test_collection_delete_accepts_15_and_18_character_ids(sf: Salesforce) -> None:
    """Deleting by 15- or 18-character ids both work and answer the 18-character id."""
    ids = [sf.Account.create({"Name": f"Short {n}"})["id"] for n in range(2)]
    results = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{ids[0][:15]},{ids[1]}"}
    )
    assert [(r["id"], r["success"]) for r in results] == [(ids[0], True), (ids[1], True)]


def test_composite_create_answers_a_location_header(sf: Salesforce) -> None:
    """A created record's subresponse carries Location: the new record's URL."""
    sub = REST["composite_create"]["request"]
    result = sf.restful("composite", method="POST", json={"compositeRequest": [sub]})
    answer = result["compositeResponse"][0]
    assert answer["httpStatusCode"] == 201
    location = answer["httpHeaders"][REST["composite_create"]["response_header"]]
    assert location == f"{API}/sobjects/Account/{answer['body']['id']}"


def test_composite_batch_runs_each_subrequest(sf: Salesforce, sandbox: Sandbox) -> None:
    """Batch answers hasErrors and one {statusCode, result} per subrequest, each one call."""
    rid = sf.Account.create({"Name": "Batch Co", "Industry": "Retail"})["id"]
    body = json.loads(json.dumps(REST["batch"]["request"]).replace("{id}", rid))
    used_before = sandbox.control("GET", "limits")["used"]
    result = sf.restful("composite/batch", method="POST", json=body)
    assert set(REST["batch"]["response_keys"]) == set(result)
    assert result["hasErrors"] is False
    statuses = [r["statusCode"] for r in result["results"]]
    assert statuses == [204, 200]
    assert result["results"][1]["result"]["Name"] == "NewName"
    assert sandbox.control("GET", "limits")["used"] - used_before == 2


def test_composite_batch_halts_on_error_when_asked(sf: Salesforce) -> None:
    """With haltOnError, the subrequests after a failure answer 412 BATCH_PROCESSING_HALTED."""
    body = {
        "haltOnError": True,
        "batchRequests": [
            {"method": "GET", "url": "v59.0/sobjects/Account/001000000000000AAA"},
            {"method": "GET", "url": "v59.0/limits/"},
        ],
    }
    result = sf.restful("composite/batch", method="POST", json=body)
    assert result["hasErrors"] is True
    assert result["results"][0]["statusCode"] == 404
    halted = result["results"][1]
    assert halted["statusCode"] == REST["batch"]["halted"]["statusCode"]
    assert halted["result"][0]["errorCode"] == REST["batch"]["halted"]["errorCode"]


def test_composite_tree_creates_parents_and_children(sf: Salesforce) -> None:
    """The documented tree creates accounts and their contacts, linked, with referenceIds."""
    result = sf.restful("composite/tree/Account", method="POST", json=REST["tree"]["request"])
    assert result["hasErrors"] is REST["tree"]["success"]["hasErrors"]
    refs = {r["referenceId"]: r["id"] for r in result["results"]}
    assert sorted(refs) == REST["tree"]["success"]["references"]
    smith = sf.Contact.get(refs["ref2"])
    assert smith["AccountId"] == refs["ref1"] and smith["LastName"] == "Smith"


def test_composite_tree_rolls_back_on_a_bad_record(sf: Salesforce, sandbox: Sandbox) -> None:
    """One invalid record fails the whole tree: 400 with its referenceId, nothing created."""
    body = {
        "records": [
            {"attributes": {"type": "Account", "referenceId": "ok"}, "Name": "Tree Rollback"},
            {"attributes": {"type": "Account", "referenceId": "bad"}, "Nope__c": 1},
        ]
    }
    response = sandbox.rest("POST", f"{API}/composite/tree/Account", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["hasErrors"] is True
    assert answer["results"][0]["referenceId"] == "bad"
    assert answer["results"][0]["errors"][0]["statusCode"] == "INVALID_FIELD"
    text = "SELECT Id FROM Account WHERE Name = 'Tree Rollback'"
    assert sf.query(text)["totalSize"] == 0


def test_describe_lists_field_properties_and_child_relationships(sf: Salesforce) -> None:
    """Describe fields carry the documented keys; Opportunity lists OpportunityLineItems."""
    describe = sf.Opportunity.describe()
    for fdef in describe["fields"]:
        assert set(REST["describe_field_keys"]) <= set(fdef)
    account = next(f for f in describe["fields"] if f["name"] == "AccountId")
    assert (account["referenceTo"], account["relationshipName"]) == (["Account"], "Account")
    children = {c["relationshipName"]: c for c in describe["childRelationships"]}
    lines = children["OpportunityLineItems"]
    assert set(REST["child_relationship_keys"]) <= set(lines)
    assert (lines["childSObject"], lines["field"], lines["cascadeDelete"]) == (
        "OpportunityLineItem",
        "OpportunityId",
        True,
    )


def test_last_modified_by_is_the_sessions_own_user(sandbox: Sandbox, sf: Salesforce) -> None:
    """A rep's edit stamps the rep as LastModifiedById; the integration user's, itself."""
    rid = sf.Account.create({"Name": "Whose edit"})["id"]
    users = {u["Username"]: u["Id"] for u in sf.query("SELECT Id, Username FROM User")["records"]}
    rep = sales_rep_session(sandbox)
    edited = sandbox.rest(
        "PATCH",
        f"{API}/sobjects/Account/{rid}",
        json={"Industry": "Retail"},
        headers={"Authorization": f"Bearer {rep}"},
    )
    assert edited.status_code == 204
    assert sf.Account.get(rid)["LastModifiedById"] == users["sam.rep@example.com"]
    sf.Account.update(rid, {"Industry": "Energy"})
    assert sf.Account.get(rid)["LastModifiedById"] == users["handoff.integration@example.com"]


def test_if_unmodified_since_refuses_a_stale_patch(sandbox: Sandbox, sf: Salesforce) -> None:
    """PATCH with If-Unmodified-Since before the last change is 412 and writes nothing."""
    rid = sf.Account.create({"Name": "Guarded"})["id"]
    stale = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    fresh = format_datetime(datetime.now(UTC) + timedelta(minutes=1), usegmt=True)
    path = f"{API}/sobjects/Account/{rid}"
    refused = sandbox.rest(
        "PATCH", path, json={"Name": "Lost"}, headers={"If-Unmodified-Since": stale}
    )
    assert_error_list(refused, 412, "PRECONDITION_FAILED")
    assert sf.Account.get(rid)["Name"] == "Guarded"
    accepted = sandbox.rest(
        "PATCH", path, json={"Name": "Won"}, headers={"If-Unmodified-Since": fresh}
    )
    assert accepted.status_code == 204 and sf.Account.get(rid)["Name"] == "Won"
    bad = sandbox.rest("PATCH", path, json={"Name": "x"}, headers={"If-Unmodified-Since": "soon"})
    assert bad.status_code == 400


CONDITIONAL = spec("conditional")


def test_if_unmodified_since_checks_whole_seconds(sandbox: Sandbox, sf: Salesforce) -> None:
    """LastModifiedDate has whole seconds; a PATCH conditional on that very second passes
    (not modified *after* it), one conditional on the second before is refused."""
    rid = sf.Account.create({"Name": "To the second"})["id"]
    stamp = sf.Account.get(rid)["LastModifiedDate"]
    assert stamp.endswith(".000+0000")
    last = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")
    path = f"{API}/sobjects/Account/{rid}"
    before = format_datetime(last - timedelta(seconds=1), usegmt=True)
    refused = sandbox.rest(
        "PATCH", path, json={"Name": "x"}, headers={"If-Unmodified-Since": before}
    )
    assert_error_list(refused, 412, "PRECONDITION_FAILED")
    same = format_datetime(last, usegmt=True)
    passed = sandbox.rest("PATCH", path, json={"Name": "y"}, headers={"If-Unmodified-Since": same})
    assert passed.status_code == 204 and sf.Account.get(rid)["Name"] == "y"


@pytest.mark.parametrize("all_or_none", [True, False])
def test_a_composite_subrequest_carries_if_unmodified_since(
    sf: Salesforce, all_or_none: bool
) -> None:
    """A subrequest's httpHeaders apply to it: a stale If-Unmodified-Since answers 412 for
    that PATCH alone; with allOrNone the others answer 400 PROCESSING_HALTED and their
    writes are rolled back, without it they land. The composite itself is 200."""
    rid = sf.Account.create({"Name": "Guarded in a composite"})["id"]
    stale = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    name = f"Created beside a stale PATCH {all_or_none}"
    body = {
        "allOrNone": all_or_none,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{API}/sobjects/Account/",
                "referenceId": "created",
                "body": {"Name": name},
            },
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Account/{rid}",
                "referenceId": "guarded",
                "body": {"Name": "Lost"},
                "httpHeaders": {"If-Unmodified-Since": stale},
            },
        ],
    }
    result = sf.restful("composite", method="POST", json=body)  # raises unless 200
    answers = {r["referenceId"]: r for r in result["compositeResponse"]}
    assert answers["guarded"]["httpStatusCode"] == 412
    assert sf.Account.get(rid)["Name"] == "Guarded in a composite"
    found = sf.query(format_soql("SELECT Id FROM Account WHERE Name = {}", name))["totalSize"]
    if all_or_none:
        assert (
            answers["created"]["httpStatusCode"]
            == CONDITIONAL["all_or_none"]["other_subrequests_status"]
        )
        assert answers["created"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
        assert found == 0
    else:
        assert answers["created"]["httpStatusCode"] == 201
        assert found == 1


def test_a_composite_subrequest_with_a_malformed_date_is_400(sf: Salesforce) -> None:
    """An invalid If-Unmodified-Since on a PATCH is 400, inside a composite too, and
    nothing is written."""
    rid = sf.Account.create({"Name": "Malformed guard"})["id"]
    sub = {
        "method": "PATCH",
        "url": f"{API}/sobjects/Account/{rid}",
        "referenceId": "guarded",
        "body": {"Name": "x"},
        "httpHeaders": {"If-Unmodified-Since": "yesterday-ish"},
    }
    result = sf.restful("composite", method="POST", json={"compositeRequest": [sub]})
    answer = result["compositeResponse"][0]
    assert answer["httpStatusCode"] == CONDITIONAL["invalid_header"]["status"]
    assert isinstance(answer["body"], list) and answer["body"][0]["errorCode"]
    assert sf.Account.get(rid)["Name"] == "Malformed guard"


# -- products, price books and line items -------------------------------------------------
LINES = spec("line_items")


def _product(sf: Salesforce, code: str) -> str:
    text = format_soql("SELECT Id FROM Product2 WHERE ProductCode = {}", code)
    return str(sf.query(text)["records"][0]["Id"])


def _new_opportunity(sf: Salesforce, name: str) -> str:
    body = {"Name": name, "StageName": "Prospecting", "CloseDate": "2026-12-01"}
    return str(sf.Opportunity.create(body)["id"])


def test_line_item_objects_have_the_documented_fields(sf: Salesforce) -> None:
    """OpportunityLineItem describes the documented fields plus a custom Cost__c."""
    names = {f["name"] for f in sf.OpportunityLineItem.describe()["fields"]}
    assert set(LINES["opportunity_line_item_fields"]) | {"Cost__c"} <= names
    for obj in ("Product2", "Pricebook2", "PricebookEntry"):
        assert sf.restful(f"sobjects/{obj}/describe")["name"] == obj


def test_seeded_deal_has_line_items_adding_up_to_its_amount(sf: Salesforce) -> None:
    """The Acme rollout carries priced lines with costs; Amount is the sum of TotalPrice."""
    rows = sf.query(
        "SELECT Amount, (SELECT Quantity, UnitPrice, TotalPrice, Cost__c, "
        "PricebookEntry.Product2.Name FROM OpportunityLineItems) "
        "FROM Opportunity WHERE Name = 'Acme rollout'"
    )["records"]
    lines = rows[0][LINES["child_relationship"]]["records"]
    assert len(lines) >= 2
    assert all(line["Cost__c"] and line["PricebookEntry"]["Product2"]["Name"] for line in lines)
    assert rows[0]["Amount"] == pytest.approx(sum(line["TotalPrice"] for line in lines))
    for line in lines:
        assert line["TotalPrice"] == pytest.approx(line["Quantity"] * line["UnitPrice"])


def test_a_new_line_prices_itself_and_rolls_up_into_amount(sf: Salesforce) -> None:
    """From Product2Id alone the line finds its standard price; TotalPrice applies Discount."""
    opp = _new_opportunity(sf, "Line pricing")
    product = _product(sf, "PLAT-100")
    list_price = sf.query(
        format_soql("SELECT UnitPrice FROM PricebookEntry WHERE Product2Id = {}", product)
    )["records"][0]["UnitPrice"]
    rid = sf.OpportunityLineItem.create(
        {"OpportunityId": opp, "Product2Id": product, "Quantity": 3, "UnitPrice": 900,
         "Discount": 10, "Cost__c": 1200}
    )["id"]  # fmt: skip
    line = sf.OpportunityLineItem.get(rid)
    assert line["ListPrice"] == list_price
    assert line["Subtotal"] == pytest.approx(2700)
    assert line["TotalPrice"] == pytest.approx(2430)
    assert line["PricebookEntryId"] and line["Name"].startswith("Line pricing")
    second = sf.OpportunityLineItem.create(
        {"OpportunityId": opp, "Product2Id": _product(sf, "SUP-300"), "Quantity": 2,
         "TotalPrice": 1000}
    )["id"]  # fmt: skip
    assert sf.OpportunityLineItem.get(second)["UnitPrice"] == pytest.approx(500)
    assert sf.Opportunity.get(opp)["Amount"] == pytest.approx(3430)
    sf.OpportunityLineItem.update(rid, {"Quantity": 1})
    assert sf.Opportunity.get(opp)["Amount"] == pytest.approx(810 + 1000)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Quantity": 1, "UnitPrice": 5, "TotalPrice": 5}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"Quantity": 1}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"Quantity": 0, "UnitPrice": 5}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"Quantity": 1, "UnitPrice": 5, "ListPrice": 1}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
    ],
)
def test_line_items_salesforce_refuses(
    sandbox: Sandbox, sf: Salesforce, body: dict[str, Any], code: str
) -> None:
    """Both prices, no price, zero quantity or a read-only field are refused as documented."""
    opp = _new_opportunity(sf, "Refused line")
    record = {"OpportunityId": opp, "Product2Id": _product(sf, "ONB-200"), **body}
    response = sandbox.rest("POST", f"{API}/sobjects/OpportunityLineItem/", json=record)
    assert_error_list(response, 400, code)


def test_custom_price_books_need_a_standard_price_first(sandbox: Sandbox, sf: Salesforce) -> None:
    """A custom price needs the product's standard price; a second one is DUPLICATE_VALUE."""
    book = sf.Pricebook2.create({"Name": "Partners", "IsActive": True})["id"]
    bare = sf.Product2.create({"Name": "Unpriced", "ProductCode": "NEW-1", "IsActive": True})["id"]
    entry = {"Pricebook2Id": book, "Product2Id": bare, "UnitPrice": 50, "IsActive": True}
    refused = sandbox.rest("POST", f"{API}/sobjects/PricebookEntry/", json=entry)
    assert_error_list(refused, 400, "STANDARD_PRICE_NOT_DEFINED")
    priced = _product(sf, "PLAT-100")
    created = sf.PricebookEntry.create({**entry, "Product2Id": priced})
    assert sf.PricebookEntry.get(created["id"])["Name"] == "Platform licence"
    again = sandbox.rest(
        "POST", f"{API}/sobjects/PricebookEntry/", json={**entry, "Product2Id": priced}
    )
    assert_error_list(again, 400, "DUPLICATE_VALUE")


# -- logins, query pages and upserts by external id ---------------------------------------
SOAP_BODY = """<?xml version="1.0" encoding="utf-8" ?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Header><urn:CallOptions><urn:client>simple-salesforce</urn:client>
  </urn:CallOptions></soapenv:Header>
  <soapenv:Body><urn:login><urn:username>{user}</urn:username>
  <urn:password>{password}</urn:password></urn:login></soapenv:Body>
</soapenv:Envelope>"""


def _sf(sandbox: Sandbox, **auth: Any) -> Salesforce:
    """simple-salesforce on the sandbox: the sandbox token, or a login with `auth`."""
    session = requests.Session()
    session.verify, session.trust_env = str(sandbox.ca_pem), False
    session.mount("https://", LoginHostAdapter(sandbox.host, 10))
    if not auth:
        auth = {"session_id": TOKEN, "instance_url": sandbox.base}
    return Salesforce(session=session, **auth)


def _create_many(sandbox: Sandbox, obj: str, records: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(records), 200):
        chunk = [{"attributes": {"type": obj}, **r} for r in records[start : start + 200]]
        body = {"allOrNone": True, "records": chunk}
        ids += [
            r["id"] for r in sandbox.rest("POST", f"{API}/composite/sobjects", json=body).json()
        ]
    return ids


def test_query_pages_follow_absolute_next_records_urls(sandbox: Sandbox) -> None:
    """Batches of 2,000 by default, smaller on request; nextRecordsUrl is an absolute path."""
    _create_many(
        sandbox, "Account", [{"Name": f"Paging {i}", "Industry": "Paging"} for i in range(2100)]
    )
    q = {"q": "SELECT Id, Name FROM Account WHERE Industry = 'Paging' ORDER BY Name"}
    first = sandbox.rest("GET", f"{API}/query/", params=q).json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (2100, False, 2000)
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w+-2000", first["nextRecordsUrl"])
    assert first["records"][0]["attributes"]["type"] == "Account"
    assert first["records"][0]["attributes"]["url"].startswith(f"{API}/sobjects/Account/")
    last = sandbox.rest("GET", first["nextRecordsUrl"]).json()
    assert (last["done"], len(last["records"]), "nextRecordsUrl" in last) == (True, 100, False)
    small = sandbox.rest(
        "GET", f"{API}/query/", params=q, headers={"Sforce-Query-Options": "batchSize=500"}
    ).json()
    assert len(small["records"]) == 500
    assert small["nextRecordsUrl"].endswith("-500")
    everything = _sf(sandbox).query_all(q["q"])
    names = [r["Name"] for r in everything["records"]]
    assert len(names) == len(set(names)) == 2100


def test_soap_login_returns_session_id_and_server_url(sandbox: Sandbox) -> None:
    """The partner loginResponse carries sessionId and an https serverUrl on the sandbox."""
    body = SOAP_BODY.format(
        user="handoff.integration@example.com", password="handoff-sandboxSANDBOXTOKEN"
    )
    response = sandbox.http.post(
        f"{sandbox.base}/services/Soap/u/59.0",
        data=body,
        headers={"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"},
    )
    assert response.status_code == 200
    session_id = re.search(r"<sessionId>([^<]+)</sessionId>", response.text)
    server_url = re.search(r"<serverUrl>([^<]+)</serverUrl>", response.text)
    assert session_id
    assert server_url
    assert server_url.group(1).startswith(f"{sandbox.base}/services/Soap/u/59.0/00D")
    headers = {"Authorization": f"Bearer {session_id.group(1)}"}
    assert sandbox.rest("GET", f"{API}/limits/", headers=headers).status_code == 200


def test_soap_login_failure_is_a_500_fault_with_exception_code(sandbox: Sandbox) -> None:
    """A refused login is HTTP 500 with sf:exceptionCode and sf:exceptionMessage."""
    body = SOAP_BODY.format(user="handoff.integration@example.com", password="wrong")
    response = sandbox.http.post(f"{sandbox.base}/services/Soap/u/59.0", data=body)
    assert response.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in response.text
    assert "<sf:exceptionMessage>" in response.text
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        _sf(
            sandbox, username="handoff.integration@example.com", password="wrong", security_token=""
        )


def test_client_credentials_token_and_oauth_errors(sandbox: Sandbox) -> None:
    """The token endpoint answers access_token + https instance_url, or 400 {error}."""
    token_url = f"{sandbox.base}/services/oauth2/token"
    ok = sandbox.http.post(
        token_url,
        data={"grant_type": "client_credentials"},
        auth=("handoff-sandbox-consumer", "handoff-sandbox-secret"),
    )
    assert ok.status_code == 200
    assert ok.json()["instance_url"] == sandbox.base
    assert ok.json()["token_type"] == "Bearer"
    bad = sandbox.http.post(
        token_url, data={"grant_type": "client_credentials"}, auth=("handoff-sandbox-consumer", "x")
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_client"


def _assertion(key: bytes, **claims: Any) -> str:
    exp = f"{(datetime.now(UTC) + timedelta(minutes=3)).timestamp():.0f}"
    payload = {
        "iss": JWT_CONSUMER_KEY,
        "sub": "handoff.integration@example.com",
        "aud": "https://login.salesforce.com",
        "exp": exp,
    }
    return jwt.encode({**payload, **claims}, key, algorithm="RS256")


@pytest.mark.parametrize(
    ("claims", "foreign_key", "accepted"),
    [
        ({}, False, True),
        ({}, True, False),
        ({"exp": str(int(time.time()) - 60)}, False, False),
        ({"aud": "https://evil.example.com"}, False, False),
        ({"sub": "nobody@example.com"}, False, False),
    ],
)
def test_jwt_bearer_checks_signature_and_claims(
    sandbox: Sandbox, claims: dict[str, str], foreign_key: bool, accepted: bool
) -> None:
    """Only an RS256 assertion signed by the registered key, unexpired, for a real user."""
    key = rsa_key_and_certificate()[0] if foreign_key else sandbox.private_key_pem
    response = sandbox.http.post(
        f"{sandbox.base}/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _assertion(key, **claims),
        },
    )
    assert (response.status_code == 200) is accepted
    if not accepted:
        assert response.json()["error"] == "invalid_grant"


def test_upsert_answers_201_created_then_200_updated(sandbox: Sandbox) -> None:
    """Upsert by external id: 201 created:true on insert, 200 created:false on update."""
    url = f"{API}/sobjects/Task/Handoff_Key__c/fidelity-1"
    inserted = sandbox.rest("PATCH", url, json={"Subject": "first"})
    updated = sandbox.rest("PATCH", url, json={"Subject": "second"})
    assert inserted.status_code == 201
    assert inserted.json() == {
        "id": inserted.json()["id"],
        "success": True,
        "errors": [],
        "created": True,
    }
    assert updated.status_code == 200
    assert updated.json()["created"] is False
    assert updated.json()["id"] == inserted.json()["id"]
    assert sandbox.rest("GET", url).json()["Subject"] == "second"


def test_upsert_with_several_matches_answers_300_with_urls(sandbox: Sandbox) -> None:
    """A non-unique external id matching two rows yields 300 and the list of their URLs."""
    base = {"StageName": "Prospecting", "CloseDate": "2026-12-31", "Handoff_Key__c": "twin"}
    ids = _create_many(
        sandbox, "Opportunity", [{**base, "Name": "Twin A"}, {**base, "Name": "Twin B"}]
    )
    response = sandbox.rest("PATCH", f"{API}/sobjects/Opportunity/Handoff_Key__c/twin", json={})
    assert response.status_code == 300
    assert sorted(response.json()) == sorted(f"{API}/sobjects/Opportunity/{i}" for i in ids)
    with pytest.raises(SalesforceMoreThanOneRecord):
        _sf(sandbox).Opportunity.upsert("Handoff_Key__c/twin", {"Amount": 1.0})


def test_a_record_is_read_and_deleted_by_its_external_id(sandbox: Sandbox) -> None:
    """GET and DELETE ``sobjects/{object}/{field}/{value}``: the record, then 204, then
    NOT_FOUND (the recycle bin keeps it, out of reach of the external id)."""
    url = f"{API}/sobjects/Task/Handoff_Key__c/by-key-1"
    assert sandbox.rest("PATCH", url, json={"Subject": "keyed"}).status_code == 201
    found = sandbox.rest("GET", url)
    assert found.status_code == 200
    assert (found.json()["Subject"], found.json()["attributes"]["type"]) == ("keyed", "Task")
    deleted = sandbox.rest("DELETE", url)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_error_list(sandbox.rest("GET", url), 404, "NOT_FOUND")


def test_collection_update_answers_a_result_per_record(sf: Salesforce, sandbox: Sandbox) -> None:
    """PATCH ``composite/sobjects``: 200 with ``{id, success, errors}`` per record in order;
    a record without an Id fails alone (MISSING_ARGUMENT) unless allOrNone."""
    ids = [sf.Account.create({"Name": f"Coll {n}"})["id"] for n in range(2)]
    records = [
        {"attributes": {"type": "Account"}, "id": ids[0], "Industry": "Retail"},
        {"attributes": {"type": "Account"}, "Industry": "Nobody"},
        {"attributes": {"type": "Account"}, "id": ids[1], "Industry": "Energy"},
    ]
    response = sandbox.rest(
        "PATCH", f"{API}/composite/sobjects", json={"allOrNone": False, "records": records}
    )
    assert response.status_code == 200
    first, missing, last = response.json()
    assert (first, last) == (
        {"id": ids[0], "success": True, "errors": []},
        {"id": ids[1], "success": True, "errors": []},
    )
    assert missing["success"] is False
    assert missing["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert [sf.Account.get(i)["Industry"] for i in ids] == ["Retail", "Energy"]


def test_collection_upsert_reports_created_and_caps_at_200(sandbox: Sandbox) -> None:
    """Upsert collections say created true/false per record; over 200 records is a 400."""
    url = f"{API}/composite/sobjects/Task/Handoff_Key__c"
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Task"}, "Handoff_Key__c": "cu-1"}],
    }
    assert sandbox.rest("PATCH", url, json=body).json()[0]["created"] is True
    assert sandbox.rest("PATCH", url, json=body).json()[0]["created"] is False
    too_many = {"records": [{"attributes": {"type": "Task"}}] * 201}
    assert sandbox.rest("PATCH", url, json=too_many).status_code == 400


# -- every served endpoint, and hostile input anywhere ------------------------------------
ENDPOINTS = spec("endpoints")


@pytest.mark.parametrize("case", ENDPOINTS["served"], ids=lambda c: c["name"])
def test_each_served_endpoint_answers_its_documented_shape(
    sandbox: Sandbox, case: dict[str, Any]
) -> None:
    """Every read endpoint the sandbox serves answers 200 with its documented top-level keys."""
    response = sandbox.rest(case["method"], case["path"], params=case.get("params"))
    assert response.status_code == 200, response.text
    body = response.json()
    if "list_item_keys" in case:
        assert body and all(set(case["list_item_keys"]) <= set(item) for item in body)
    else:
        assert set(case["keys"]) <= set(body), body


@pytest.mark.parametrize(
    "case", ENDPOINTS["hostile"], ids=lambda c: f"{c['method']} {c['path']} {c.get('params')}"
)
def test_hostile_input_never_gets_a_500_or_a_foreign_error_shape(
    sandbox: Sandbox, case: dict[str, Any]
) -> None:
    """Garbage in any served endpoint gets a 4xx in the endpoint's own error shape."""
    kwargs = {k: case[k] for k in ("params", "json") if k in case}
    if "data" in case:
        kwargs["data"] = case["data"].encode()
    response = sandbox.rest(case["method"], case["path"], **kwargs)
    assert 200 <= response.status_code < 500 or case["path"].startswith("/services/Soap")
    if response.status_code < 400:  # a collection, composite or batch: errors per item
        assert "error" in response.text.lower() or "false" in response.text, response.text
        return
    if case["path"].startswith("/services/oauth2"):
        assert set(response.json()) >= {"error", "error_description"}
    elif case["path"].startswith("/services/Soap"):
        assert b"faultcode" in response.content or b"exceptionCode" in response.content
    else:
        body = response.json()
        errors = body if isinstance(body, list) else body.get("results", [{}])[0].get("errors")
        assert isinstance(errors, list) and errors, body
        assert all("errorCode" in e or "statusCode" in e for e in errors), body


# -- every route is covered -----------------------------------------------------------------
V = "/services/data/v{ver}"
#: Where each route the sandbox serves is checked against the documentation: a "served"
#: entry of endpoints.json (``endpoints.json: <name>``) or a named test of this module.
#: `sobjects/{rest:path}` is listed by the sub-paths it dispatches to (`SOBJECT_METHODS`).
COVERED_BY: dict[str, str] = {
    "POST /services/oauth2/token": "test_client_credentials_token_and_oauth_errors",
    "GET /services/oauth2/userinfo": "endpoints.json: userinfo",
    "POST /services/Soap/u/{ver}": "test_soap_login_returns_session_id_and_server_url",
    "GET /services/data": "endpoints.json: versions",
    f"GET {V}/query": "endpoints.json: query without the trailing slash",
    f"GET {V}/query/": "endpoints.json: query",
    f"GET {V}/queryAll": "endpoints.json: queryAll without the trailing slash",
    f"GET {V}/queryAll/": "endpoints.json: queryAll",
    f"GET {V}/query/{{locator}}": "test_query_pages_follow_absolute_next_records_urls",
    f"GET {V}/search": "endpoints.json: search without the trailing slash",
    f"GET {V}/search/": "endpoints.json: search",
    f"GET {V}/limits/": "endpoints.json: limits",
    f"POST {V}/composite": "test_composite_create_answers_a_location_header",
    f"POST {V}/composite/batch": "test_composite_batch_runs_each_subrequest",
    f"POST {V}/composite/tree/{{object}}": "test_composite_tree_creates_parents_and_children",
    f"POST {V}/composite/sobjects": "test_collection_insert_refuses_a_record_with_an_id",
    f"PATCH {V}/composite/sobjects": "test_collection_update_answers_a_result_per_record",
    f"DELETE {V}/composite/sobjects": "test_collection_delete_accepts_15_and_18_character_ids",
    f"PATCH {V}/composite/sobjects/{{object}}/{{field}}":
        "test_collection_upsert_reports_created_and_caps_at_200",
    f"GET {V}/sobjects": "endpoints.json: describe global",
    f"GET {V}/sobjects/{{object}}/": "endpoints.json: sobject basic information",
    f"POST {V}/sobjects/{{object}}/": "test_classic_note_takes_no_custom_fields",
    f"GET {V}/sobjects/{{object}}/describe": "endpoints.json: sobject describe",
    f"GET {V}/sobjects/{{object}}/updated": "endpoints.json: updated",
    f"GET {V}/sobjects/{{object}}/deleted": "endpoints.json: deleted",
    f"GET {V}/sobjects/{{object}}/{{id}}": "test_last_modified_by_is_the_sessions_own_user",
    f"PATCH {V}/sobjects/{{object}}/{{id}}": "test_if_unmodified_since_refuses_a_stale_patch",
    f"DELETE {V}/sobjects/{{object}}/{{id}}": "test_deleted_records_go_to_the_recycle_bin",
    f"GET {V}/sobjects/{{object}}/{{field}}/{{value}}":
        "test_a_record_is_read_and_deleted_by_its_external_id",
    f"PATCH {V}/sobjects/{{object}}/{{field}}/{{value}}":
        "test_upsert_answers_201_created_then_200_updated",
    f"DELETE {V}/sobjects/{{object}}/{{field}}/{{value}}":
        "test_a_record_is_read_and_deleted_by_its_external_id",
}  # fmt: skip


def served_routes() -> set[str]:
    """``METHOD path`` of every route the app serves (the ``/_sandbox`` controls aside),
    with ``sobjects/{rest:path}`` replaced by the sub-paths its handler dispatches to."""
    found = set()
    for route in create_app(None).routes:
        path = getattr(route, "path", "")
        if not path or path.startswith("/_sandbox") or path.startswith(f"{V}/sobjects"):
            continue
        found |= {f"{m} {path}" for m in (getattr(route, "methods", None) or set()) - {"HEAD"}}
    for sub, methods in SOBJECT_METHODS.items():
        found |= {f"{m} {V}/{sub}" for m in methods}
    return found


def _matches(route: str, method: str, path: str) -> bool:
    """Does a documented request (method, concrete path) hit the route template?"""
    template_method, _, template = route.partition(" ")
    parts = re.split(r"\{\w+(?::\w+)?\}", template)
    pattern = "[^/]+".join(re.escape(p) for p in parts).rstrip("/") + "/?"
    return method == template_method and re.fullmatch(pattern, path) is not None


def test_every_salesforce_route_is_covered() -> None:
    """Each route (and each sub-path the sobjects handler dispatches to, with each method)
    is answered by a served entry of endpoints.json that requests it, or by a named test of
    this module; a new route fails here until it gets one."""
    served = served_routes()
    assert served == set(COVERED_BY), {
        "not covered": sorted(served - set(COVERED_BY)),
        "no such route": sorted(set(COVERED_BY) - served),
    }
    entries = {c["name"]: c for c in ENDPOINTS["served"]}
    tests = {
        node.name
        for node in ast.parse(Path(__file__).read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }
    for route, by in COVERED_BY.items():
        if by.startswith("endpoints.json: "):
            case = entries[by.removeprefix("endpoints.json: ")]
            assert _matches(route, case["method"], case["path"]), (route, case)
        else:
            assert by in tests, f"{route}: no test named {by}"


@pytest.mark.parametrize(
    ("sub", "path"),
    [
        ("sobjects", "/sobjects"),
        ("sobjects/{object}/", "/sobjects/Account/"),
        ("sobjects/{object}/describe", "/sobjects/Account/describe"),
        ("sobjects/{object}/updated", "/sobjects/Account/updated/"),
        ("sobjects/{object}/deleted", "/sobjects/Account/deleted/"),
        ("sobjects/{object}/{id}", "/sobjects/Account/001000000000000AAA"),
        ("sobjects/{object}/{field}/{value}", "/sobjects/Task/Handoff_Key__c/nobody"),
    ],
)
def test_the_sobjects_handler_dispatches_each_listed_sub_path(
    sandbox: Sandbox, sub: str, path: str
) -> None:
    """A request to each sub-path is counted under its template, and a method the list
    does not give it is 405 METHOD_NOT_ALLOWED with ``Allow`` (so the list is the handler's)."""
    allowed = SOBJECT_METHODS[sub]
    for method in ("GET", "POST", "PATCH", "DELETE"):
        sandbox.control("POST", "stats/reset")
        response = sandbox.rest(method, f"{API}{path}", json={})
        assert sandbox.control("GET", "stats") == {f"{method} {V}/{sub}": 1}, method
        if method in allowed:
            assert response.status_code != 405, (method, response.text)
        else:
            assert_error_list(response, 405, "METHOD_NOT_ALLOWED")
            assert response.headers["Allow"] == ", ".join(allowed)

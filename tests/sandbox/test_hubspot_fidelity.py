"""The HubSpot sandbox's wire contract, pinned to HubSpot's documented shapes.

Expected bodies come from the CRM v3/v4 docs and the verified wire facts (the SDK's
models and what hubspot-api-client 12 sends), not from the sandbox's own output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectId
from support.hubspot import TOKEN, HubSpotSandbox, running_sandbox

from sandbox.common import FaultSettings

OBJ = "/crm/v3/objects"
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


def assert_error(body: dict[str, Any], category: str) -> None:
    """HubSpot's Error model: status, message, correlationId and category."""
    assert body["status"] == "error"
    assert body["category"] == category
    assert isinstance(body["message"], str)
    assert body["message"]
    assert re.fullmatch(r"[0-9a-f-]{36}", body["correlationId"])


def assert_object(obj: dict[str, Any]) -> None:
    """SimplePublicObject: string id, string-or-null properties, ISO timestamps, archived."""
    assert isinstance(obj["id"], str)
    assert obj["id"].isdigit()
    assert all(v is None or isinstance(v, str) for v in obj["properties"].values())
    assert obj["properties"]["hs_object_id"] == obj["id"]
    assert ISO_MS.match(obj["createdAt"])
    assert ISO_MS.match(obj["updatedAt"])
    assert ISO_MS.match(obj["properties"]["createdate"])
    assert ISO_MS.match(obj["properties"]["hs_lastmodifieddate"])
    assert obj["archived"] is False


def new_note(sb: HubSpotSandbox, key: str, body: str = "hello") -> dict[str, Any]:
    props = {"hs_note_body": body, "hs_timestamp": "1714560000000", "handoff_key": key}
    response = sb.api("POST", f"{OBJ}/notes", json={"properties": props})
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


# -- auth and errors -----------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_wrong_token_is_401_invalid_authentication(
    sb: HubSpotSandbox, token: str | None
) -> None:
    """No bearer token or a wrong one: 401 with category INVALID_AUTHENTICATION."""
    response = sb.api("GET", f"{OBJ}/deals/1001", token=token)
    assert response.status_code == 401
    assert_error(response.json(), "INVALID_AUTHENTICATION")


def test_unknown_object_is_404_object_not_found(sb: HubSpotSandbox) -> None:
    """GET of an id that does not exist: 404 OBJECT_NOT_FOUND."""
    response = sb.api("GET", f"{OBJ}/deals/987654")
    assert response.status_code == 404
    assert_error(response.json(), "OBJECT_NOT_FOUND")


def test_unknown_property_is_400_validation_error_with_details(sb: HubSpotSandbox) -> None:
    """Writing a property that does not exist: 400 VALIDATION_ERROR, errors[].code named."""
    response = sb.api("PATCH", f"{OBJ}/deals/1001", json={"properties": {"nope": "1"}})
    assert response.status_code == 400
    body = response.json()
    assert_error(body, "VALIDATION_ERROR")
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert body["errors"][0]["context"] == {"propertyName": ["nope"]}


def test_duplicate_unique_value_on_create_is_409_conflict(sb: HubSpotSandbox) -> None:
    """A second note with the same handoff_key (hasUniqueValue) is refused with 409 CONFLICT."""
    new_note(sb, "dup")
    props = {"hs_note_body": "again", "hs_timestamp": "1714560000000", "handoff_key": "dup"}
    response = sb.api("POST", f"{OBJ}/notes", json={"properties": props})
    assert response.status_code == 409
    assert_error(response.json(), "CONFLICT")


# -- objects -------------------------------------------------------------------------------
def test_get_returns_a_simple_public_object_with_string_properties(sb: HubSpotSandbox) -> None:
    """Numbers come back as strings, asked-for unset properties as null."""
    response = sb.api(
        "GET", f"{OBJ}/deals/1001", params=[("properties", "amount"), ("properties", "cost")]
    )
    assert response.status_code == 200
    body = response.json()
    assert_object(body)
    assert body["properties"]["amount"] == "120000"
    assert body["properties"]["cost"] is None


def test_create_is_201_and_stringifies_numbers_and_booleans(sb: HubSpotSandbox) -> None:
    """JSON numbers and booleans sent as property values are stored and returned as text."""
    props = {
        "dealname": "New",
        "amount": 1234.5,
        "budget_confirmed": True,
        "dealstage": "closedwon",
    }
    response = sb.api("POST", f"{OBJ}/deals", json={"properties": props})
    assert response.status_code == 201
    body = response.json()
    assert_object(body)
    assert body["properties"]["amount"] == "1234.5"
    assert body["properties"]["budget_confirmed"] == "true"


def test_patch_is_200_and_delete_is_204_then_archived(sb: HubSpotSandbox) -> None:
    """Archiving hides the record (404) unless archived=True is asked, as the SDK spells it."""
    note = new_note(sb, "arch")
    patched = sb.api(
        "PATCH", f"{OBJ}/notes/{note['id']}", json={"properties": {"hs_note_body": "b"}}
    )
    assert patched.status_code == 200
    assert patched.json()["properties"]["hs_note_body"] == "b"
    assert sb.api("DELETE", f"{OBJ}/notes/{note['id']}").status_code == 204
    assert (
        sb.api("GET", f"{OBJ}/notes/{note['id']}", params={"archived": "False"}).status_code == 404
    )
    found = sb.api("GET", f"{OBJ}/notes/{note['id']}", params={"archived": "True"})
    assert found.status_code == 200
    assert found.json()["archived"] is True


def test_id_property_reads_by_a_unique_property(sb: HubSpotSandbox) -> None:
    """GET ?idProperty=handoff_key finds the note by its unique key."""
    note = new_note(sb, "by-key")
    response = sb.api("GET", f"{OBJ}/notes/by-key", params={"idProperty": "handoff_key"})
    assert response.json()["id"] == note["id"]


def test_list_pages_on_paging_next_after(sb: HubSpotSandbox) -> None:
    """limit=2 over three deals: two pages linked by paging.next.after, none after the last."""
    first = sb.api("GET", f"{OBJ}/deals", params={"limit": 2}).json()
    assert len(first["results"]) == 2
    after = first["paging"]["next"]["after"]
    assert isinstance(after, str)
    second = sb.api("GET", f"{OBJ}/deals", params={"limit": 2, "after": after}).json()
    assert "paging" not in second
    ids = [o["id"] for o in first["results"] + second["results"]]
    assert sorted(ids) == ["1001", "1002", "1003"]


# -- search --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"propertyName": "dealstage", "operator": "EQ", "value": "qualifiedtobuy"}, {"1003"}),
        (
            {"propertyName": "dealstage", "operator": "NEQ", "value": "qualifiedtobuy"},
            {"1001", "1002"},
        ),
        ({"propertyName": "amount", "operator": "LT", "value": "45000"}, {"1002"}),
        ({"propertyName": "amount", "operator": "LTE", "value": "45000"}, {"1002", "1003"}),
        ({"propertyName": "amount", "operator": "GT", "value": "45000"}, {"1001"}),
        ({"propertyName": "amount", "operator": "GTE", "value": "45000"}, {"1001", "1003"}),
        (
            {"propertyName": "hs_object_id", "operator": "IN", "values": ["1001", "1003"]},
            {"1001", "1003"},
        ),
        (
            {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": ["1001"]},
            {"1002", "1003"},
        ),
        ({"propertyName": "need_confirmed", "operator": "HAS_PROPERTY"}, {"1003"}),
        ({"propertyName": "need_confirmed", "operator": "NOT_HAS_PROPERTY"}, {"1001", "1002"}),
        ({"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "pilot"}, {"1002"}),
    ],
)
def test_search_operators(sb: HubSpotSandbox, flt: dict[str, Any], expected: set[str]) -> None:
    """Each documented filter operator selects the seeded deals it should."""
    body = {"filterGroups": [{"filters": [flt]}], "limit": 100}
    response = sb.api("POST", f"{OBJ}/deals/search", json=body)
    assert response.status_code == 200
    result = response.json()
    assert {o["id"] for o in result["results"]} == expected
    assert result["total"] == len(expected)


def test_search_sorts_and_pages_with_after(sb: HubSpotSandbox) -> None:
    """Sorted by amount descending, one per page, paging.next.after walks all three."""
    ids, after = [], None
    for _ in range(5):
        body = {"sorts": ["-amount"], "properties": ["amount"], "limit": 1, "after": after}
        page = sb.api("POST", f"{OBJ}/deals/search", json=body).json()
        assert page["total"] == 3
        ids += [o["id"] for o in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert ids == ["1001", "1003", "1002"]


def test_search_with_an_unknown_operator_is_a_validation_error(sb: HubSpotSandbox) -> None:
    """An operator outside the documented enum is a 400 VALIDATION_ERROR."""
    body = {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "LIKE"}]}]}
    response = sb.api("POST", f"{OBJ}/deals/search", json=body)
    assert response.status_code == 400
    assert_error(response.json(), "VALIDATION_ERROR")


# -- batch ---------------------------------------------------------------------------------
def test_batch_read_with_a_missing_id_is_207_multi_status(sb: HubSpotSandbox) -> None:
    """Found records in results; the missing id in errors[] with numErrors, status COMPLETE."""
    body = {"inputs": [{"id": "1001"}, {"id": "999"}], "properties": ["dealname"]}
    response = sb.api("POST", f"{OBJ}/deals/batch/read", json=body, params={"archived": "False"})
    assert response.status_code == 207
    result = response.json()
    assert result["status"] == "COMPLETE"
    assert [o["id"] for o in result["results"]] == ["1001"]
    assert result["numErrors"] == 1
    assert result["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert result["errors"][0]["context"] == {"ids": ["999"]}
    assert ISO_MS.match(result["startedAt"])
    assert ISO_MS.match(result["completedAt"])


def test_the_sdk_reads_a_207_as_success_with_errors(sb: HubSpotSandbox) -> None:
    """hubspot-api-client treats 207 as success and exposes num_errors."""
    client = HubSpot(access_token=TOKEN, host=sb.base)
    inputs = [SimplePublicObjectId(id="1001"), SimplePublicObjectId(id="999")]
    result = client.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=inputs, properties=["dealname"], properties_with_history=[]
        )
    )
    assert result.num_errors == 1
    assert result.results[0].properties["dealname"] == "Acme Corp — platform rollout"


def test_batch_upsert_by_unique_property_reports_new(sb: HubSpotSandbox) -> None:
    """Upsert by idProperty=handoff_key creates (new: true) then updates (new: false)."""
    item = {
        "idProperty": "handoff_key",
        "id": "up-1",
        "properties": {"hs_note_body": "v1", "hs_timestamp": "1714560000000"},
    }
    first = sb.api("POST", f"{OBJ}/notes/batch/upsert", json={"inputs": [item]})
    assert first.status_code == 200
    item["properties"] = {"hs_note_body": "v2"}
    second = sb.api("POST", f"{OBJ}/notes/batch/upsert", json={"inputs": [item]}).json()
    assert first.json()["results"][0]["new"] is True
    assert second["results"][0]["new"] is False
    assert second["results"][0]["id"] == first.json()["results"][0]["id"]
    assert second["results"][0]["properties"]["hs_note_body"] == "v2"


def test_batch_upsert_on_a_non_unique_property_is_refused(sb: HubSpotSandbox) -> None:
    """idProperty must be a property with hasUniqueValue: otherwise 400."""
    item = {"idProperty": "hs_note_body", "id": "x", "properties": {}}
    response = sb.api("POST", f"{OBJ}/notes/batch/upsert", json={"inputs": [item]})
    assert response.status_code == 400
    assert_error(response.json(), "VALIDATION_ERROR")


def test_batch_create_is_201_and_batch_archive_is_204(sb: HubSpotSandbox) -> None:
    """batch/create answers 201 with results; batch/archive answers 204 with no body."""
    inputs = [
        {"properties": {"hs_note_body": f"n{i}", "hs_timestamp": "1714560000000"}} for i in range(2)
    ]
    created = sb.api("POST", f"{OBJ}/notes/batch/create", json={"inputs": inputs})
    assert created.status_code == 201
    ids = [o["id"] for o in created.json()["results"]]
    archived = sb.api(
        "POST", f"{OBJ}/notes/batch/archive", json={"inputs": [{"id": i} for i in ids]}
    )
    assert archived.status_code == 204
    assert archived.content == b""


def test_batch_update_with_a_missing_id_is_207(sb: HubSpotSandbox) -> None:
    """batch/update applies what it can and reports the rest."""
    inputs = [
        {"id": "1002", "properties": {"scope": "Bigger pilot"}},
        {"id": "555", "properties": {"scope": "x"}},
    ]
    response = sb.api("POST", f"{OBJ}/deals/batch/update", json={"inputs": inputs})
    assert response.status_code == 207
    assert response.json()["numErrors"] == 1
    assert sb.activity("1002")["deal"]["scope"] == "Bigger pilot"


# -- associations v4 -----------------------------------------------------------------------
def test_association_put_takes_an_array_body_and_answers_201(sb: HubSpotSandbox) -> None:
    """PUT .../associations/deals/1001 with a JSON array of specs: 201 LabelsBetweenObjectPair."""
    note = new_note(sb, "assoc")
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}]
    response = sb.api(
        "PUT", f"/crm/v4/objects/notes/{note['id']}/associations/deals/1001", json=spec
    )
    assert response.status_code == 201
    body = response.json()
    assert body["fromObjectTypeId"] == "0-46"
    assert body["toObjectTypeId"] == "0-3"
    assert str(body["fromObjectId"]) == note["id"]
    assert str(body["toObjectId"]) == "1001"
    assert body["labels"] == []
    object_body = sb.api(
        "PUT", f"/crm/v4/objects/notes/{note['id']}/associations/deals/1001", json=spec[0]
    )
    assert object_body.status_code == 400


def test_default_association_answers_200_batch_response(sb: HubSpotSandbox) -> None:
    """PUT .../associations/default/deals/1001 with no body: 200 with from, to and spec."""
    note = new_note(sb, "default")
    response = sb.api("PUT", f"/crm/v4/objects/notes/{note['id']}/associations/default/deals/1001")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE"
    result = body["results"][0]
    assert result["from"] == {"id": note["id"]}
    assert result["to"] == {"id": "1001"}
    assert result["associationSpec"] == {
        "associationCategory": "HUBSPOT_DEFINED",
        "associationTypeId": 214,
    }


def test_association_list_pages_with_after(sb: HubSpotSandbox) -> None:
    """GET .../associations/notes with limit=1 pages through the deal's notes."""
    for i in range(2):
        note = new_note(sb, f"page-{i}")
        sb.api("PUT", f"/crm/v4/objects/notes/{note['id']}/associations/default/deals/1001")
    first = sb.api(
        "GET", "/crm/v4/objects/deals/1001/associations/notes", params={"limit": 1}
    ).json()
    assert first["results"][0]["associationTypes"][0] == {
        "category": "HUBSPOT_DEFINED",
        "typeId": 213,
        "label": None,
    }
    after = first["paging"]["next"]["after"]
    second = sb.api(
        "GET", "/crm/v4/objects/deals/1001/associations/notes", params={"limit": 1, "after": after}
    ).json()
    assert "paging" not in second
    assert first["results"][0]["toObjectId"] != second["results"][0]["toObjectId"]


# -- properties and pipelines --------------------------------------------------------------
def test_properties_carry_the_required_fields_and_unique_keys(sb: HubSpotSandbox) -> None:
    """Every Property has name, label, type, fieldType, groupName, description, options."""
    for ot in ("deals", "notes", "tasks", "orders"):
        props = sb.api("GET", f"/crm/v3/properties/{ot}").json()["results"]
        required = {"name", "label", "type", "fieldType", "groupName", "description", "options"}
        assert all(required <= set(p) for p in props)
        if ot != "deals":
            key = sb.api("GET", f"/crm/v3/properties/{ot}/handoff_key").json()
            assert key["hasUniqueValue"] is True
    assert sb.api("GET", "/crm/v3/properties/deals/nope").status_code == 404


def test_the_deal_pipeline_has_hubspots_default_stages(sb: HubSpotSandbox) -> None:
    """GET /crm/v3/pipelines/deals lists the default pipeline with its stage ids and metadata."""
    pipelines = sb.api("GET", "/crm/v3/pipelines/deals").json()["results"]
    stages = sb.api("GET", "/crm/v3/pipelines/deals/default/stages").json()["results"]
    assert [p["id"] for p in pipelines] == ["default"]
    assert [s["id"] for s in stages] == [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ]
    assert stages[-2]["metadata"] == {"isClosed": "true", "probability": "1.0"}


# -- rate limits and faults ----------------------------------------------------------------
def test_every_response_carries_rate_limit_headers_that_count_down(sb: HubSpotSandbox) -> None:
    """The five X-HubSpot-RateLimit headers are integers; Remaining drops call by call."""
    first = sb.api("GET", f"{OBJ}/deals/1001")
    second = sb.api("GET", f"{OBJ}/deals/999")
    for response in (first, second):
        assert all(response.headers[h].isdigit() for h in RATE_HEADERS)
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    remaining = [int(r.headers["X-HubSpot-RateLimit-Remaining"]) for r in (first, second)]
    assert remaining[1] == remaining[0] - 1


def test_going_over_the_window_is_a_real_429(sb: HubSpotSandbox) -> None:
    """Past Max calls in the window: 429 with HubSpot's RATE_LIMIT body and Retry-After."""
    sb.limits(max=3, interval_ms=10_000)
    answers = [sb.api("GET", f"{OBJ}/deals/1001") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    body = answers[-1].json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].headers["X-HubSpot-RateLimit-Remaining"] == "0"


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        ({"error_rate": 1.0}, 500),
        ({"down": True}, 503),
        ({"burst_429": 1, "retry_after_s": 7}, 429),
    ],
)
def test_faults_apply_before_auth(
    sb: HubSpotSandbox, settings: dict[str, Any], status: int
) -> None:
    """Faults answer even a request with a bad token, with a HubSpot-shaped body."""
    sb.faults(**settings)
    assert FaultSettings(**sb.control("GET", "faults")) == FaultSettings(**settings)
    response = sb.api("GET", f"{OBJ}/deals/1001", token="bad")
    assert response.status_code == status
    assert response.json()["status"] == "error"
    if status == 429:
        assert response.headers["Retry-After"] == "7"


# -- read model, stats and persistence -----------------------------------------------------
def test_stats_count_requests_by_path_template(sb: HubSpotSandbox) -> None:
    """Requests are counted by method and route template, with a total; reset clears them."""
    sb.control("POST", "stats/reset")
    sb.api("GET", f"{OBJ}/deals/1001")
    sb.api("GET", f"{OBJ}/deals/1002")
    stats = sb.stats()
    assert stats["GET /crm/v3/objects/{ot}/{oid}"] == 2
    assert stats["total"] == 2
    sb.control("POST", "stats/reset")
    assert sb.stats() == {}


def test_state_persists_across_restarts_on_the_same_file(tmp_path: Path) -> None:
    """A sandbox restarted on its SQLite file keeps its records and does not re-seed."""
    store = tmp_path / "hubspot.sqlite3"
    with running_sandbox(store) as first:
        note = new_note(first, "persist")
        first.api("PATCH", f"{OBJ}/deals/1001", json={"properties": {"scope": "kept"}})
    with running_sandbox(store) as second:
        assert second.api("GET", f"{OBJ}/notes/{note['id']}").status_code == 200
        assert second.activity("1001")["deal"]["scope"] == "kept"
        deals = second.api("GET", f"{OBJ}/deals", params={"limit": 100}).json()["results"]
        assert len(deals) == 3

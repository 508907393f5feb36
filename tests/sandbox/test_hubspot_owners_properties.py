"""The HubSpot sandbox's owners API and properties create/update/archive, driven through
hubspot-api-client as a user's own script would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubspot import HubSpot
from hubspot.crm.owners.exceptions import NotFoundException as OwnerNotFound
from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyUpdate
from hubspot.crm.properties.exceptions import ApiException as PropertyApiError
from support.hubspot import TOKEN, HubSpotSandbox, assert_hubspot_error, running_sandbox

POLICY = Path(__file__).parents[2] / "workflows" / "default_policy.yaml"


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def hs(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sb.base)


# -- owners -------------------------------------------------------------------------------
def test_every_person_of_the_default_policy_is_an_owner(hs: HubSpot) -> None:
    """Each email in workflows/default_policy.yaml is found by the owners API's email filter."""
    owners = hs.crm.owners.owners_api
    emails = sorted(set(re.findall(r"[a-z.]+@example\.com", POLICY.read_text())))
    assert len(emails) >= 5
    for email in emails:
        page = owners.get_page(email=email)
        assert [o.email for o in page.results] == [email]
        assert page.results[0].id.isdigit()
        assert page.results[0].type == "PERSON"


def test_owners_page_with_after_until_done(hs: HubSpot) -> None:
    """Pages of 3 follow paging.next.after and list every owner once."""
    owners = hs.crm.owners.owners_api
    seen: list[str] = []
    after = None
    for _ in range(20):
        page = owners.get_page(limit=3, after=after)
        assert len(page.results) <= 3
        seen += [o.id for o in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(seen) == len(set(seen)) >= 10
    assert "sam.rep@example.com" in {o.email for o in owners.get_page(limit=100).results}


def test_an_owner_reads_by_id_and_by_user_id(hs: HubSpot) -> None:
    """GET /crm/v3/owners/{id} finds the owner by id, or by userId with idProperty=userId."""
    owners = hs.crm.owners.owners_api
    sam = owners.get_page(email="sam.rep@example.com").results[0]
    assert owners.get_by_id(int(sam.id)).email == sam.email
    assert owners.get_by_id(sam.user_id, id_property="userId").id == sam.id
    with pytest.raises(OwnerNotFound):
        owners.get_by_id(1)


def test_an_unknown_email_lists_no_owner(hs: HubSpot) -> None:
    """The email filter matches exactly: a stranger gets an empty page."""
    assert hs.crm.owners.owners_api.get_page(email="nobody@example.com").results == []


def test_hubspot_owner_id_must_name_an_owner(sb: HubSpotSandbox, hs: HubSpot) -> None:
    """A task assigned to an owner id is stored; an invented owner id is a 400."""
    sam = hs.crm.owners.owners_api.get_page(email="sam.rep@example.com").results[0]
    props = {"hs_task_subject": "Call", "hs_timestamp": "2026-12-01T09:00:00Z"}
    ok = sb.api(
        "POST", "/crm/v3/objects/tasks", json={"properties": {**props, "hubspot_owner_id": sam.id}}
    )
    assert ok.status_code == 201
    bad = sb.api(
        "POST", "/crm/v3/objects/tasks", json={"properties": {**props, "hubspot_owner_id": "12"}}
    )
    assert_hubspot_error(bad, 400, "VALIDATION_ERROR")
    assert bad.json()["errors"][0]["code"] == "INVALID_OWNER_ID"


# -- properties ----------------------------------------------------------------------------
def test_a_created_property_can_be_written_and_searched(sb: HubSpotSandbox, hs: HubSpot) -> None:
    """POST /crm/v3/properties/deals defines a property deals then accept and search on."""
    core = hs.crm.properties.core_api
    created = core.create(
        "deals",
        PropertyCreate(
            name="renewal_tier",
            label="Renewal tier",
            type="enumeration",
            field_type="select",
            group_name="dealinformation",
            options=[
                OptionInput(label="Gold", value="gold", display_order=0, hidden=False),
                OptionInput(label="Silver", value="silver", display_order=1, hidden=False),
            ],
        ),
    )
    assert (created.name, created.type, [o.value for o in created.options]) == (
        "renewal_tier",
        "enumeration",
        ["gold", "silver"],
    )
    assert core.get_by_name("deals", "renewal_tier").label == "Renewal tier"
    assert (
        sb.api(
            "PATCH", "/crm/v3/objects/deals/1002", json={"properties": {"renewal_tier": "gold"}}
        ).status_code
        == 200
    )
    bad = sb.api(
        "PATCH", "/crm/v3/objects/deals/1002", json={"properties": {"renewal_tier": "bronze"}}
    )
    assert_hubspot_error(bad, 400, "VALIDATION_ERROR")
    flt = {"propertyName": "renewal_tier", "operator": "EQ", "value": "gold"}
    found = sb.api(
        "POST", "/crm/v3/objects/deals/search", json={"filterGroups": [{"filters": [flt]}]}
    )
    assert [r["id"] for r in found.json()["results"]] == ["1002"]


def test_creating_an_existing_property_is_409(hs: HubSpot) -> None:
    """A property name already taken answers 409 with HubSpot's error body."""
    body = PropertyCreate(
        name="dealname", label="Again", type="string", field_type="text", group_name="x"
    )
    with pytest.raises(PropertyApiError) as caught:
        hs.crm.properties.core_api.create("deals", body)
    assert caught.value.status == 409


@pytest.mark.parametrize(
    "body",
    [
        {"label": "No name", "type": "string", "fieldType": "text", "groupName": "g"},
        {"name": "Bad Name", "label": "x", "type": "string", "fieldType": "text", "groupName": "g"},
        {"name": "x1", "label": "x", "type": "colour", "fieldType": "text", "groupName": "g"},
        {"name": "x2", "label": "x", "type": "string", "fieldType": "slider", "groupName": "g"},
        {
            "name": "x3",
            "label": "x",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "g",
        },
        {"name": "x4", "label": "x", "type": "string", "fieldType": "text"},
    ],
)
def test_an_invalid_property_definition_is_refused(
    sb: HubSpotSandbox, body: dict[str, str]
) -> None:
    """Missing or invalid name, type, fieldType, group or options: 400 VALIDATION_ERROR."""
    assert_hubspot_error(
        sb.api("POST", "/crm/v3/properties/deals", json=body), 400, "VALIDATION_ERROR"
    )


def test_updating_a_property_changes_its_definition(hs: HubSpot) -> None:
    """PATCH changes the label and options; the new option is accepted on a record."""
    core = hs.crm.properties.core_api
    updated = core.update(
        "tasks",
        "hs_task_priority",
        PropertyUpdate(
            label="Urgency",
            options=[OptionInput(label="Now", value="NOW", display_order=0, hidden=False)],
        ),
    )
    assert updated.label == "Urgency"
    assert [o.value for o in core.get_by_name("tasks", "hs_task_priority").options] == ["NOW"]


def test_an_archived_property_is_gone_from_writes_but_listed_as_archived(
    sb: HubSpotSandbox, hs: HubSpot
) -> None:
    """DELETE archives a custom property: 204, writes then fail, archived=true lists it."""
    core = hs.crm.properties.core_api
    core.archive("deals", "po_number")
    names = {p.name for p in core.get_all("deals").results}
    archived = {p.name for p in core.get_all("deals", archived=True).results}
    assert "po_number" not in names
    assert "po_number" in archived
    response = sb.api(
        "PATCH", "/crm/v3/objects/deals/1001", json={"properties": {"po_number": "1"}}
    )
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert response.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"


def test_a_hubspot_defined_property_cannot_be_archived(sb: HubSpotSandbox) -> None:
    """Archiving dealname or an hs_ property is refused with 400; a missing one is 404."""
    assert_hubspot_error(sb.api("DELETE", "/crm/v3/properties/deals/dealname"), 400)
    assert_hubspot_error(sb.api("DELETE", "/crm/v3/properties/notes/hs_timestamp"), 400)
    assert_hubspot_error(sb.api("DELETE", "/crm/v3/properties/deals/nope"), 404, "OBJECT_NOT_FOUND")


def test_created_properties_survive_a_restart(tmp_path: Path) -> None:
    """A property created on a sandbox file is still defined when the sandbox restarts."""
    path = tmp_path / "hs.sqlite3"
    body = {
        "name": "region",
        "label": "Region",
        "type": "string",
        "fieldType": "text",
        "groupName": "g",
    }
    with running_sandbox(path) as first:
        assert first.api("POST", "/crm/v3/properties/companies", json=body).status_code == 201
    with running_sandbox(path) as second:
        assert second.api("GET", "/crm/v3/properties/companies/region").json()["label"] == "Region"

"""The HubSpot sandbox's v4 associations: type ids validated, delete, batches and
labels, driven through hubspot-api-client's v4 APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiArchive,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
    PublicObjectId,
)
from hubspot.crm.associations.v4.exceptions import ApiException as AssocApiError
from hubspot.crm.associations.v4.schema import PublicAssociationDefinitionCreateRequest
from support.hubspot import TOKEN, HubSpotSandbox, assert_hubspot_error, running_sandbox

DEAL_TO_CONTACT = 3


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def hs(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sb.base)


def contacts_of(sb: HubSpotSandbox, deal: str) -> dict[str, set[int]]:
    body = sb.api("GET", f"/crm/v4/objects/deals/{deal}/associations/contacts").json()
    return {r["toObjectId"]: {t["typeId"] for t in r["associationTypes"]} for r in body["results"]}


@pytest.mark.parametrize(
    "spec",
    [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 99999},
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214},  # note→deal
        {"associationCategory": "USER_DEFINED", "associationTypeId": DEAL_TO_CONTACT},
        {"associationCategory": "MADE_UP", "associationTypeId": DEAL_TO_CONTACT},
    ],
)
def test_an_invented_association_type_is_refused(
    sb: HubSpotSandbox, spec: dict[str, object]
) -> None:
    """A type id (or category) that does not exist between deals and contacts is a 400."""
    response = sb.api("PUT", "/crm/v4/objects/deals/1003/associations/contacts/3002", json=[spec])
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert "3002" not in contacts_of(sb, "1003")


def test_an_association_is_readable_from_both_sides_and_deleted_from_one(
    sb: HubSpotSandbox, hs: HubSpot
) -> None:
    """PUT deal→contact shows as contact→deal (type 4); DELETE removes both directions."""
    v4 = hs.crm.associations.v4.basic_api
    spec = AssociationSpec(
        association_category="HUBSPOT_DEFINED", association_type_id=DEAL_TO_CONTACT
    )
    v4.create("deals", "1003", "contacts", "3002", [spec])
    back = v4.get_page("contacts", "3002", "deals")
    assert {(r.to_object_id, r.association_types[0].type_id) for r in back.results} >= {("1003", 4)}
    v4.archive("deals", "1003", "contacts", "3002")
    assert "3002" not in contacts_of(sb, "1003")
    assert "1003" not in {r.to_object_id for r in v4.get_page("contacts", "3002", "deals").results}


def test_batch_create_read_and_archive(sb: HubSpotSandbox, hs: HubSpot) -> None:
    """Batch create links two contacts, batch read lists them, batch archive unlinks one."""
    batch = hs.crm.associations.v4.batch_api
    spec = AssociationSpec(
        association_category="HUBSPOT_DEFINED", association_type_id=DEAL_TO_CONTACT
    )
    created = batch.create(
        "deals",
        "contacts",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id="1003"), to=PublicObjectId(id=c), types=[spec]
                )
                for c in ("3001", "3002")
            ]
        ),
    )
    assert sorted(r.to_object_id for r in created.results) == ["3001", "3002"]
    read = batch.get_page(
        "deals",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id="1003")]
        ),
    )
    assert sorted(t.to_object_id for t in read.results[0].to) == ["3001", "3002"]
    batch.archive(
        "deals",
        "contacts",
        BatchInputPublicAssociationMultiArchive(
            inputs=[
                PublicAssociationMultiArchive(
                    _from=PublicObjectId(id="1003"), to=[PublicObjectId(id="3001")]
                )
            ]
        ),
    )
    assert set(contacts_of(sb, "1003")) == {"3002"}


def test_batch_create_with_an_invented_type_changes_nothing(sb: HubSpotSandbox) -> None:
    """One bad type id in a batch: 400 for the whole batch, and no association is made."""
    inputs = [
        {
            "from": {"id": "1003"},
            "to": {"id": contact},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
        }
        for contact, type_id in (("3001", 3), ("3002", 777))
    ]
    response = sb.api(
        "POST", "/crm/v4/associations/deals/contacts/batch/create", json={"inputs": inputs}
    )
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert contacts_of(sb, "1003") == {}


def test_batch_read_of_a_missing_record_is_207(sb: HubSpotSandbox) -> None:
    """Batch read with a record that does not exist: 207, found ones in results."""
    body = {"inputs": [{"id": "1001"}, {"id": "9999"}]}
    response = sb.api("POST", "/crm/v4/associations/deals/contacts/batch/read", json=body)
    assert response.status_code == 207
    result = response.json()
    assert [r["from"]["id"] for r in result["results"]] == ["1001"]
    assert result["errors"][0]["context"]["ids"] == ["9999"]


def test_batch_associate_default(hs: HubSpot) -> None:
    """Batch associate/default links notes to deals with HubSpot's default type 214."""
    note = hs.crm.objects.notes.basic_api.create(
        {"properties": {"hs_note_body": "x", "hs_timestamp": "2026-12-01T00:00:00Z"}}
    )
    result = hs.crm.associations.v4.batch_api.create_default(
        "notes",
        "deals",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(
                    _from=PublicObjectId(id=note.id), to=PublicObjectId(id="1002")
                )
            ]
        ),
    )
    assert result.results[0].association_spec.association_type_id == 214


def test_a_label_can_be_created_used_archived_and_deleted(sb: HubSpotSandbox, hs: HubSpot) -> None:
    """A USER_DEFINED label gets a type id per direction; it shows on both sides; labels/archive
    removes only it; deleting the label refuses it afterwards."""
    made = hs.crm.associations.v4.schema.definitions_api.create(
        "deals",
        "contacts",
        PublicAssociationDefinitionCreateRequest(
            label="Decision maker", name="decision_maker", inverse_label="Decides on"
        ),
    )
    forward, backward = (r.type_id for r in made.results)
    assert forward != backward
    labels = sb.api("GET", "/crm/v4/associations/deals/contacts/labels").json()["results"]
    assert {
        "category": "USER_DEFINED",
        "typeId": forward,
        "label": "Decision maker",
    }.items() <= next(label for label in labels if label["typeId"] == forward).items()
    specs = [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT},
        {"associationCategory": "USER_DEFINED", "associationTypeId": forward},
    ]
    pair = sb.api("PUT", "/crm/v4/objects/deals/1003/associations/contacts/3001", json=specs)
    assert pair.status_code == 201
    assert pair.json()["labels"] == ["Decision maker"]
    back = sb.api("GET", "/crm/v4/objects/contacts/3001/associations/deals").json()["results"]
    mine = next(r for r in back if r["toObjectId"] == "1003")
    assert {(t["typeId"], t["label"]) for t in mine["associationTypes"]} == {
        (4, None),
        (backward, "Decides on"),
    }
    archive = {"inputs": [{"from": {"id": "1003"}, "to": {"id": "3001"}, "types": [specs[1]]}]}
    assert (
        sb.api(
            "POST", "/crm/v4/associations/deals/contacts/batch/labels/archive", json=archive
        ).status_code
        == 204
    )
    assert contacts_of(sb, "1003") == {"3001": {DEAL_TO_CONTACT}}
    assert (
        sb.api("DELETE", f"/crm/v4/associations/deals/contacts/labels/{forward}").status_code == 204
    )
    again = sb.api("PUT", "/crm/v4/objects/deals/1003/associations/contacts/3001", json=specs[1:])
    assert_hubspot_error(again, 400, "VALIDATION_ERROR")


def test_the_spec_path_of_labels_is_served_too(sb: HubSpotSandbox) -> None:
    """/crm/associations/v4/{from}/{to}/labels lists the same labels as the client's path."""
    spec_path = sb.api("GET", "/crm/associations/v4/deals/companies/labels").json()["results"]
    client_path = sb.api("GET", "/crm/v4/associations/deals/companies/labels").json()["results"]
    assert spec_path == client_path
    assert {(r["typeId"], r["label"]) for r in spec_path} == {(341, None), (5, "Primary")}


def test_a_v4_api_error_reaches_the_client_as_its_api_exception(hs: HubSpot) -> None:
    """Associating a record that does not exist: the client raises its 404 exception."""
    spec = AssociationSpec(
        association_category="HUBSPOT_DEFINED", association_type_id=DEAL_TO_CONTACT
    )
    with pytest.raises(AssocApiError) as caught:
        hs.crm.associations.v4.basic_api.create("deals", "987654", "contacts", "3001", [spec])
    assert caught.value.status == 404

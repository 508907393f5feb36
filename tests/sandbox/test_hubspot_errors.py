"""Every failure of the HubSpot sandbox answers HubSpot's own error body and status:
unknown routes, wrong methods, bodies that are not JSON, bad cursors and odd inputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.hubspot import HubSpotSandbox, assert_hubspot_error, running_sandbox

OBJ = "/crm/v3/objects"
V4 = "/crm/v4/objects"


@pytest.fixture(scope="module")
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        sandbox.limits(max=100_000, interval_ms=10_000)
        yield sandbox


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/crm/v3/nothing",
        "/crm/v3/objects/deals/1001/extra/segments",
        "/crm/v5/objects/deals",
        "/crm/v4/objects/deals/1001",
        "/marketing/v3/emails",
    ],
)
def test_an_unknown_route_is_a_hubspot_404(sb: HubSpotSandbox, path: str) -> None:
    """A path the sandbox does not serve: 404 in HubSpot's error body, not FastAPI's."""
    assert_hubspot_error(sb.api("GET", path), 404, "OBJECT_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{OBJ}/deals"),
        ("DELETE", f"{OBJ}/deals"),
        ("PATCH", f"{OBJ}/deals"),
        ("PUT", f"{OBJ}/deals/1001"),
        ("GET", f"{OBJ}/deals/batch/read"),
        ("POST", "/crm/v3/pipelines/deals"),
    ],
)
def test_a_wrong_method_is_a_hubspot_405(sb: HubSpotSandbox, method: str, path: str) -> None:
    """A served path with a method it does not take: 405 in HubSpot's error body."""
    response = sb.api(method, path, json={})
    assert_hubspot_error(response, 405)
    assert "allow" in {k.lower() for k in response.headers}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{OBJ}/deals"),
        ("PATCH", f"{OBJ}/deals/1001"),
        ("POST", f"{OBJ}/deals/search"),
        ("POST", f"{OBJ}/deals/batch/read"),
        ("POST", f"{OBJ}/deals/batch/upsert"),
        ("PUT", f"{V4}/notes/1/associations/deals/1001"),
    ],
)
def test_a_body_that_is_not_json_is_a_validation_error(
    sb: HubSpotSandbox, method: str, path: str
) -> None:
    """Broken JSON declared as JSON: 400 VALIDATION_ERROR, never a 500."""
    response = sb.api(
        method, path, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")


def test_a_body_that_is_not_declared_json_is_415(sb: HubSpotSandbox) -> None:
    """A body sent as text/plain: 415 in HubSpot's error body."""
    response = sb.api(
        "POST",
        f"{OBJ}/deals",
        content=b"dealname=x",
        headers={"Content-Type": "text/plain"},
    )
    assert_hubspot_error(response, 415)


@pytest.mark.parametrize(
    "path",
    [
        f"{OBJ}/deals?after=abc",
        f"{OBJ}/deals?after=-1",
        f"{OBJ}/deals?limit=ten",
        f"{OBJ}/deals?limit=0",
        f"{OBJ}/deals?archived=maybe",
        f"{V4}/deals/1001/associations/contacts?after=abc",
        f"{V4}/deals/1001/associations/contacts?limit=-5",
        f"{OBJ}/deals/1001?archived=sometimes",
        "/crm/v3/owners/?after=abc",
        "/crm/v3/owners/?limit=1000",
        "/crm/v3/owners/1?idProperty=email",
        "/crm/v3/properties/deals?archived=perhaps",
        f"{OBJ}/deals?propertiesWithHistory=amount&after=x",
    ],
)
def test_a_bad_query_parameter_is_a_validation_error(sb: HubSpotSandbox, path: str) -> None:
    """A paging cursor or parameter the API never issued: 400 VALIDATION_ERROR, not a 500."""
    assert_hubspot_error(sb.api("GET", path), 400, "VALIDATION_ERROR")


def test_an_unknown_object_type_is_a_validation_error(sb: HubSpotSandbox) -> None:
    """An object type HubSpot cannot infer: 400 VALIDATION_ERROR naming it."""
    response = sb.api("GET", f"{OBJ}/unicorns/1")
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert "unicorns" in response.json()["message"]


ODD_BODIES: list[Any] = [
    None,
    [],
    "text",
    7,
    {},
    {"properties": []},
    {"properties": {"dealname": {"nested": 1}}},
    {"associations": [1]},
    {"associations": [{"to": "x", "types": "y"}]},
    {"inputs": [1]},
    {"inputs": [{"id": {"x": 1}}]},
    {"inputs": [{"from": 1, "to": [1], "types": [1]}]},
    {"inputs": [{"properties": "x", "idProperty": 3}]},
    {"filterGroups": [{"filters": [1]}]},
    {"filterGroups": [1]},
    {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GT", "value": "x"}]}]},
    {"sorts": [{"propertyName": 1}], "limit": "many"},
    {"query": 5, "after": "abc"},
    [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": "x"}],
    {"name": 1, "label": None, "type": "nope"},
    {"name": "ok_name", "label": "x", "type": "enumeration", "fieldType": "select",
     "groupName": "g", "options": [{"label": 1}]},
    {"label": ["x"], "associationTypeId": "7", "inverseLabel": 3},
    {"inputs": [{"from": {"id": "1001"}, "to": "3001", "types": []}]},
    {"inputs": [{"from": {"id": "1001"}, "to": [{"id": None}]}]},
    {"inputs": [{"id": "1001", "after": "zz"}]},
    {"propertiesWithHistory": "amount", "inputs": []},
]  # fmt: skip
WRITE_ROUTES = [
    ("POST", f"{OBJ}/deals"),
    ("POST", f"{OBJ}/notes"),
    ("PATCH", f"{OBJ}/deals/1001"),
    ("POST", f"{OBJ}/deals/search"),
    ("POST", f"{OBJ}/deals/batch/read"),
    ("POST", f"{OBJ}/deals/batch/create"),
    ("POST", f"{OBJ}/deals/batch/update"),
    ("POST", f"{OBJ}/notes/batch/upsert"),
    ("POST", f"{OBJ}/deals/batch/archive"),
    ("PUT", f"{V4}/deals/1001/associations/contacts/3001"),
    ("POST", f"{OBJ}/line_items"),
    ("POST", "/crm/v3/properties/deals"),
    ("PATCH", "/crm/v3/properties/deals/scope"),
    ("POST", "/crm/v4/associations/deals/contacts/batch/create"),
    ("POST", "/crm/v4/associations/deals/contacts/batch/read"),
    ("POST", "/crm/v4/associations/deals/contacts/batch/archive"),
    ("POST", "/crm/v4/associations/deals/contacts/batch/labels/archive"),
    ("POST", "/crm/v4/associations/deals/contacts/batch/associate/default"),
    ("POST", "/crm/v4/associations/deals/contacts/labels"),
    ("PUT", "/crm/v4/associations/deals/contacts/labels"),
]


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_odd_bodies_never_crash_the_sandbox(sb: HubSpotSandbox, method: str, path: str) -> None:
    """Every odd JSON body gets a documented answer or HubSpot's 4xx error body, never a 5xx."""
    for body in ODD_BODIES:
        response = sb.api(method, path, json=body)
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            assert_hubspot_error(response, response.status_code)

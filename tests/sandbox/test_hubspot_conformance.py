"""The HubSpot sandbox conforms to HubSpot's public OpenAPI specs.

Each case calls one endpoint the sandbox serves, through hubspot-api-client where the
client exposes it (``_preload_content=False`` keeps the raw body) and with httpx
otherwise, and validates the status and body against the schema the spec gives that
operation's answer. Error answers are validated against the spec's ``Error`` schema. The
spec excerpts live in ``tests/sandbox/specs/hubspot/`` (see its README for the source).
A last test checks that every route of the sandbox's app is covered by some case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from support.hubspot import TOKEN, HubSpotSandbox, running_sandbox

SPECS = Path(__file__).parent / "specs" / "hubspot"
OBJ = "/crm/v3/objects"


# -- a validator for the subset of JSON Schema the excerpts use ----------------------------
@cache
def spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPECS / f"{name}.json").read_text())
    return loaded


def validate(value: Any, schema: dict[str, Any], doc: dict[str, Any], at: str = "$") -> list[str]:
    """Errors of `value` against `schema` ($ref, type, properties, required, items,
    additionalProperties, enum, format date-time/int32/int64). An optional field may be
    null: HubSpot sends null for unset values, and the SDK's models accept it."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return validate(value, doc["components"]["schemas"][name], doc, at)
    kind = schema.get("type")
    checks: dict[str, Callable[[Any], bool]] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind in checks and not checks[kind](value):
        return [f"{at}: expected {kind}, got {type(value).__name__} {value!r:.60}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in {schema['enum']}")
    fmt = schema.get("format")
    if fmt == "date-time" and isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"{at}: {value!r} is not a date-time")
    if fmt == "int32" and isinstance(value, int) and not -(2**31) <= value < 2**31:
        errors.append(f"{at}: {value} does not fit int32")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if value.get(name) is None:
                errors.append(f"{at}: required {name!r} missing or null")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in props:
                if item is not None:
                    errors += validate(item, props[name], doc, f"{at}.{name}")
            elif isinstance(extra, dict):
                if item is not None:
                    errors += validate(item, extra, doc, f"{at}.{name}")
            elif props and extra is not True:
                errors.append(f"{at}: undocumented field {name!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], doc, f"{at}[{i}]")
    return errors


def assert_conforms(spec_name: str, operation: str, status: int, body: Any) -> None:
    """`status` is documented for `operation` and `body` matches its schema."""
    doc = spec(spec_name)
    responses = doc["operations"][operation]
    if status >= 400:
        # Real error bodies also carry "status": "error", which the Error schema omits.
        assert body.pop("status") == "error"
        schema: dict[str, Any] | None = {"$ref": "#/components/schemas/Error"}
    else:
        assert str(status) in responses, f"{operation}: status {status} not in {list(responses)}"
        schema = responses[str(status)]
    if schema is None:
        assert body is None, f"{operation}: {status} documents no body, got {body!r:.200}"
        return
    errors = validate(body, schema, doc)
    assert not errors, f"{operation} {status}: " + "; ".join(errors[:10])


# -- the calls -------------------------------------------------------------------------------
class Apis:
    """hubspot-api-client APIs built once (each property access builds a new client)."""

    def __init__(self, base: str) -> None:
        hs = HubSpot(access_token=TOKEN, host=base)
        self.deals = hs.crm.deals.basic_api
        self.deals_search = hs.crm.deals.search_api
        self.deals_batch = hs.crm.deals.batch_api
        self.notes = hs.crm.objects.notes.basic_api
        self.tasks = hs.crm.objects.tasks.basic_api
        self.objects = hs.crm.objects.basic_api
        self.assoc = hs.crm.associations.v4.basic_api
        self.properties = hs.crm.properties.core_api
        self.pipelines = hs.crm.pipelines.pipelines_api
        self.stages = hs.crm.pipelines.pipeline_stages_api
        self.owners = hs.crm.owners.owners_api


def raw(call: Callable[..., Any], *args: Any, **kw: Any) -> tuple[int, Any]:
    """Call a client method and return (status, parsed body or None), errors included."""
    try:
        response = call(*args, _preload_content=False, **kw)
    except Exception as exc:  # each generated client package has its own ApiException
        if not isinstance(getattr(exc, "status", None), int):
            raise
        return exc.status, json.loads(exc.body) if exc.body else None  # type: ignore[attr-defined]
    data = response.data
    return response.status, json.loads(data) if data else None


@dataclass(frozen=True)
class Case:
    """One call: the sandbox route it exercises, and the spec operation it must match."""

    name: str
    route: str
    spec: str
    operation: str
    call: Callable[[HubSpotSandbox, Apis], tuple[int, Any]]


def _http(method: str, path: str, **kw: Any) -> Callable[[HubSpotSandbox, Apis], tuple[int, Any]]:
    def call(sb: HubSpotSandbox, _: Apis) -> tuple[int, Any]:
        response = sb.api(method, path, **kw)
        return response.status_code, response.json() if response.content else None

    return call


NOTE = {"hs_note_body": "conformance", "hs_timestamp": "2026-12-01T09:00:00.000Z"}
ASSOC_TO_DEAL = [
    {
        "to": {"id": "1001"},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}],
    }
]

CASES: list[Case] = [
    # objects
    Case(
        "get a deal",
        "GET /crm/v3/objects/{ot}/{oid}",
        "deals",
        "GET /crm/v3/objects/0-3/{dealId}",
        lambda sb, a: raw(a.deals.get_by_id, "1001", associations=["contacts", "companies"]),
    ),
    Case(
        "get a missing deal",
        "GET /crm/v3/objects/{ot}/{oid}",
        "deals",
        "GET /crm/v3/objects/0-3/{dealId}",
        lambda sb, a: raw(a.deals.get_by_id, "999999"),
    ),
    Case(
        "list deals",
        "GET /crm/v3/objects/{ot}",
        "deals",
        "GET /crm/v3/objects/0-3",
        lambda sb, a: raw(a.deals.get_page, limit=2, properties=["amount"]),
    ),
    Case(
        "create a deal",
        "POST /crm/v3/objects/{ot}",
        "deals",
        "POST /crm/v3/objects/0-3",
        _http("POST", f"{OBJ}/deals", json={"properties": {"dealname": "C", "amount": "5"}}),
    ),
    Case(
        "create a note on a deal",
        "POST /crm/v3/objects/{ot}",
        "notes",
        "POST /crm/v3/objects/notes",
        _http("POST", f"{OBJ}/notes", json={"properties": NOTE, "associations": ASSOC_TO_DEAL}),
    ),
    Case(
        "create a deal with a bad property",
        "POST /crm/v3/objects/{ot}",
        "deals",
        "POST /crm/v3/objects/0-3",
        _http("POST", f"{OBJ}/deals", json={"properties": {"nope": "1"}}),
    ),
    Case(
        "update a deal",
        "PATCH /crm/v3/objects/{ot}/{oid}",
        "deals",
        "PATCH /crm/v3/objects/0-3/{dealId}",
        _http("PATCH", f"{OBJ}/deals/1002", json={"properties": {"amount": "19000"}}),
    ),
    Case(
        "archive an object",
        "DELETE /crm/v3/objects/{ot}/{oid}",
        "objects",
        "DELETE /crm/v3/objects/{objectType}/{objectId}",
        lambda sb, a: raw(a.objects.archive, "companies", "2002"),
    ),
    Case(
        "list orders through the generic objects API",
        "GET /crm/v3/objects/{ot}",
        "objects",
        "GET /crm/v3/objects/{objectType}",
        lambda sb, a: raw(a.objects.get_page, "orders"),
    ),
    Case(
        "search deals",
        "POST /crm/v3/objects/{ot}/search",
        "deals",
        "POST /crm/v3/objects/0-3/search",
        _http("POST", f"{OBJ}/deals/search", json={"sorts": ["-amount"], "limit": 1}),
    ),
    # batch
    Case(
        "batch read deals with a missing id",
        "POST /crm/v3/objects/{ot}/batch/read",
        "deals",
        "POST /crm/v3/objects/0-3/batch/read",
        _http("POST", f"{OBJ}/deals/batch/read", json={"inputs": [{"id": "1001"}, {"id": "9"}]}),
    ),
    Case(
        "batch create notes",
        "POST /crm/v3/objects/{ot}/batch/create",
        "notes",
        "POST /crm/v3/objects/notes/batch/create",
        _http("POST", f"{OBJ}/notes/batch/create", json={"inputs": [{"properties": NOTE}]}),
    ),
    Case(
        "batch update deals",
        "POST /crm/v3/objects/{ot}/batch/update",
        "deals",
        "POST /crm/v3/objects/0-3/batch/update",
        _http(
            "POST",
            f"{OBJ}/deals/batch/update",
            json={"inputs": [{"id": "1003", "properties": {"amount": "46000"}}]},
        ),
    ),
    Case(
        "batch upsert tasks by a unique property",
        "POST /crm/v3/objects/{ot}/batch/upsert",
        "tasks",
        "POST /crm/v3/objects/tasks/batch/upsert",
        _http(
            "POST",
            f"{OBJ}/tasks/batch/upsert",
            json={
                "inputs": [
                    {
                        "id": "conf-task",
                        "idProperty": "handoff_key",
                        "properties": {
                            "hs_task_subject": "x",
                            "hs_timestamp": "2026-12-01T09:00:00.000Z",
                        },
                    }
                ]
            },
        ),
    ),
    Case(
        "batch archive deals",
        "POST /crm/v3/objects/{ot}/batch/archive",
        "deals",
        "POST /crm/v3/objects/0-3/batch/archive",
        _http("POST", f"{OBJ}/deals/batch/archive", json={"inputs": [{"id": "424242"}]}),
    ),
    # associations v4
    Case(
        "associate a contact to a deal with a type",
        "PUT /crm/v4/objects/{ot}/{oid}/associations/{tot}/{tid}",
        "associations_v4",
        "PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}",
        _http(
            "PUT",
            "/crm/v4/objects/deals/1003/associations/contacts/3001",
            json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
        ),
    ),
    Case(
        "associate by default",
        "PUT /crm/v4/objects/{ot}/{oid}/associations/default/{tot}/{tid}",
        "associations_v4",
        "PUT /crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/"
        "{toObjectType}/{toObjectId}",
        lambda sb, a: raw(a.assoc.create_default, "companies", "2001", "deals", "1003"),
    ),
    Case(
        "list a deal's contacts",
        "GET /crm/v4/objects/{ot}/{oid}/associations/{tot}",
        "associations_v4",
        "GET /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}",
        lambda sb, a: raw(a.assoc.get_page, "deals", "1001", "contacts"),
    ),
    # properties and pipelines
    Case(
        "list deal properties",
        "GET /crm/v3/properties/{ot}",
        "properties",
        "GET /crm/v3/properties/{objectType}",
        lambda sb, a: raw(a.properties.get_all, "deals"),
    ),
    Case(
        "read one property",
        "GET /crm/v3/properties/{ot}/{name}",
        "properties",
        "GET /crm/v3/properties/{objectType}/{propertyName}",
        lambda sb, a: raw(a.properties.get_by_name, "deals", "dealstage"),
    ),
    Case(
        "read a missing property",
        "GET /crm/v3/properties/{ot}/{name}",
        "properties",
        "GET /crm/v3/properties/{objectType}/{propertyName}",
        lambda sb, a: raw(a.properties.get_by_name, "deals", "no_such_property"),
    ),
    Case(
        "list deal pipelines",
        "GET /crm/v3/pipelines/{ot}",
        "pipelines",
        "GET /crm/v3/pipelines/{objectType}",
        lambda sb, a: raw(a.pipelines.get_all, "deals"),
    ),
    Case(
        "read the default pipeline",
        "GET /crm/v3/pipelines/{ot}/{pid}",
        "pipelines",
        "GET /crm/v3/pipelines/{objectType}/{pipelineId}",
        lambda sb, a: raw(a.pipelines.get_by_id, "deals", "default"),
    ),
    Case(
        "list the default pipeline's stages",
        "GET /crm/v3/pipelines/{ot}/{pid}/stages",
        "pipelines",
        "GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages",
        lambda sb, a: raw(a.stages.get_all, "deals", "default"),
    ),
]

LABELS = "/crm/associations/v4/{fromObjectType}/{toObjectType}/labels"
V4_BATCH = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch"
V4_PAIR = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"
DEAL_CONTACT = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]
PROPERTY = {"name": "conf_prop", "label": "Conf", "type": "string", "fieldType": "text",
            "groupName": "dealinformation"}  # fmt: skip


def _new_label(sb: HubSpotSandbox, base: str, name: str) -> int:
    body = {"label": name.title(), "name": name}
    response = sb.api("POST", f"{base}/deals/contacts/labels", json=body)
    type_id: int = response.json()["results"][0]["typeId"]
    return type_id


def _then(
    first: Callable[[HubSpotSandbox], Any],
    method: str,
    path: Callable[[Any], str],
    body: Callable[[Any], Any] | None = None,
) -> Callable[[HubSpotSandbox, Apis], tuple[int, Any]]:
    """Run `first` (a set-up call), then the checked call on the path (and body) it leads to."""

    def call(sb: HubSpotSandbox, apis: Apis) -> tuple[int, Any]:
        made = first(sb)
        kw = {} if body is None else {"json": body(made)}
        return _http(method, path(made), **kw)(sb, apis)

    return call


CASES += [
    # owners
    Case("list owners by email", "GET /crm/v3/owners/", "owners", "GET /crm/v3/owners",
         lambda sb, a: raw(a.owners.get_page, email="sam.rep@example.com")),
    Case("list owners in pages", "GET /crm/v3/owners", "owners", "GET /crm/v3/owners",
         _http("GET", "/crm/v3/owners", params={"limit": 2})),
    Case("read an owner", "GET /crm/v3/owners/{owner_id}", "owners",
         "GET /crm/v3/owners/{ownerId}", _http("GET", "/crm/v3/owners/70000001")),
    Case("read a missing owner", "GET /crm/v3/owners/{owner_id}", "owners",
         "GET /crm/v3/owners/{ownerId}", _http("GET", "/crm/v3/owners/1")),
    # properties
    Case("create a property", "POST /crm/v3/properties/{ot}", "properties",
         "POST /crm/v3/properties/{objectType}",
         _http("POST", "/crm/v3/properties/deals", json=PROPERTY)),
    Case("create a property twice", "POST /crm/v3/properties/{ot}", "properties",
         "POST /crm/v3/properties/{objectType}",
         _http("POST", "/crm/v3/properties/deals", json={**PROPERTY, "name": "dealname"})),
    Case("update a property", "PATCH /crm/v3/properties/{ot}/{name}", "properties",
         "PATCH /crm/v3/properties/{objectType}/{propertyName}",
         _http("PATCH", "/crm/v3/properties/deals/scope", json={"label": "Scope of work"})),
    Case("archive a property", "DELETE /crm/v3/properties/{ot}/{name}", "properties",
         "DELETE /crm/v3/properties/{objectType}/{propertyName}",
         _http("DELETE", "/crm/v3/properties/deals/promised")),
    # line items and products
    Case("create a line item", "POST /crm/v3/objects/{ot}", "line_items",
         "POST /crm/v3/objects/line_items",
         _http("POST", f"{OBJ}/line_items",
               json={"properties": {"hs_product_id": "4001", "quantity": "2"}})),
    Case("list line items", "GET /crm/v3/objects/{ot}", "line_items",
         "GET /crm/v3/objects/line_items",
         _http("GET", f"{OBJ}/line_items", params={"properties": "amount"})),
    Case("search products", "POST /crm/v3/objects/{ot}/search", "products",
         "POST /crm/v3/objects/products/search",
         _http("POST", f"{OBJ}/products/search", json={"query": "platform"})),
    Case("read a deal with history", "GET /crm/v3/objects/{ot}/{oid}", "deals",
         "GET /crm/v3/objects/0-3/{dealId}",
         lambda sb, a: raw(a.deals.get_by_id, "1001", properties_with_history=["amount"])),
    # associations v4: pairs and batches
    Case("delete an association", "DELETE /crm/v4/objects/{ot}/{oid}/associations/{tot}/{tid}",
         "associations_v4", f"DELETE {V4_PAIR}",
         lambda sb, a: raw(a.assoc.archive, "deals", "1001", "contacts", "3001")),
    Case("associate with an invented type",
         "PUT /crm/v4/objects/{ot}/{oid}/associations/{tot}/{tid}",
         "associations_v4", f"PUT {V4_PAIR}",
         _http("PUT", "/crm/v4/objects/deals/1002/associations/contacts/3001",
               json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 12345}])),
    Case("batch create associations", "POST /crm/v4/associations/{ot}/{tot}/batch/create",
         "associations_v4", f"POST {V4_BATCH}/create",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/create",
               json={"inputs": [{"from": {"id": "1002"}, "to": {"id": "3001"},
                                 "types": DEAL_CONTACT}]})),
    Case("batch create associations with a missing record",
         "POST /crm/v4/associations/{ot}/{tot}/batch/create",
         "associations_v4", f"POST {V4_BATCH}/create",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/create",
               json={"inputs": [{"from": {"id": "1002"}, "to": {"id": "3999"},
                                 "types": DEAL_CONTACT}]})),
    Case("batch read associations", "POST /crm/v4/associations/{ot}/{tot}/batch/read",
         "associations_v4", f"POST {V4_BATCH}/read",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/read",
               json={"inputs": [{"id": "1002"}, {"id": "1001"}]})),
    Case("batch read with a missing record", "POST /crm/v4/associations/{ot}/{tot}/batch/read",
         "associations_v4", f"POST {V4_BATCH}/read",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/read",
               json={"inputs": [{"id": "1002"}, {"id": "55"}]})),
    Case("batch archive labels", "POST /crm/v4/associations/{ot}/{tot}/batch/labels/archive",
         "associations_v4", f"POST {V4_BATCH}/labels/archive",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/labels/archive",
               json={"inputs": [{"from": {"id": "1002"}, "to": {"id": "3001"},
                                 "types": DEAL_CONTACT}]})),
    Case("batch archive associations", "POST /crm/v4/associations/{ot}/{tot}/batch/archive",
         "associations_v4", f"POST {V4_BATCH}/archive",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/archive",
               json={"inputs": [{"from": {"id": "1002"}, "to": [{"id": "3002"}]}]})),
    Case("batch associate by default",
         "POST /crm/v4/associations/{ot}/{tot}/batch/associate/default",
         "associations_v4", f"POST {V4_BATCH}/associate/default",
         _http("POST", "/crm/v4/associations/deals/contacts/batch/associate/default",
               json={"inputs": [{"from": {"id": "1003"}, "to": {"id": "3002"}}]})),
    # association labels, at the client's path and at the spec's
    Case("list labels (client path)", "GET /crm/v4/associations/{ot}/{tot}/labels",
         "associations_schema_v4", f"GET {LABELS}",
         _http("GET", "/crm/v4/associations/deals/companies/labels")),
    Case("list labels (spec path)", "GET /crm/associations/v4/{ot}/{tot}/labels",
         "associations_schema_v4", f"GET {LABELS}",
         _http("GET", "/crm/associations/v4/deals/contacts/labels")),
    Case("create a label (client path)", "POST /crm/v4/associations/{ot}/{tot}/labels",
         "associations_schema_v4", f"POST {LABELS}",
         _http("POST", "/crm/v4/associations/deals/contacts/labels",
               json={"label": "Champion", "name": "champion"})),
    Case("create a label (spec path)", "POST /crm/associations/v4/{ot}/{tot}/labels",
         "associations_schema_v4", f"POST {LABELS}",
         _http("POST", "/crm/associations/v4/deals/contacts/labels",
               json={"label": "Sponsor", "name": "sponsor", "inverseLabel": "Sponsors"})),
    Case("rename a label (client path)", "PUT /crm/v4/associations/{ot}/{tot}/labels",
         "associations_schema_v4", f"PUT {LABELS}",
         _then(lambda sb: _new_label(sb, "/crm/v4/associations", "renamed_a"), "PUT",
               lambda _: "/crm/v4/associations/deals/contacts/labels",
               lambda t: {"associationTypeId": t, "label": "Blocker"})),
    Case("rename a missing label (spec path)", "PUT /crm/associations/v4/{ot}/{tot}/labels",
         "associations_schema_v4", f"PUT {LABELS}",
         _http("PUT", "/crm/associations/v4/deals/contacts/labels",
               json={"associationTypeId": 424242, "label": "Nobody"})),
    Case("delete a label (client path)",
         "DELETE /crm/v4/associations/{ot}/{tot}/labels/{type_id}",
         "associations_schema_v4", f"DELETE {LABELS}/{{associationTypeId}}",
         _then(lambda sb: _new_label(sb, "/crm/v4/associations", "gone_a"), "DELETE",
               lambda t: f"/crm/v4/associations/deals/contacts/labels/{t}")),
    Case("delete a label (spec path)",
         "DELETE /crm/associations/v4/{ot}/{tot}/labels/{type_id}",
         "associations_schema_v4", f"DELETE {LABELS}/{{associationTypeId}}",
         _then(lambda sb: _new_label(sb, "/crm/associations/v4", "gone_b"), "DELETE",
               lambda t: f"/crm/associations/v4/deals/contacts/labels/{t}")),
]  # fmt: skip

TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"
CASES += [
    # what a private app token may do (`handoff crm setup` checks the scopes with it)
    Case("read the token's scopes", f"POST {TOKEN_INFO}", "private_apps", f"POST {TOKEN_INFO}",
         _http("POST", TOKEN_INFO, json={"tokenKey": TOKEN})),
]  # fmt: skip

#: Documented operations the sandbox does not serve: HubSpot's error body, 404 or 405.
UNSERVED = [
    ("deals", "POST /crm/v3/objects/0-3/merge", "POST", f"{OBJ}/deals/merge"),
    ("pipelines", "GET /crm/v3/pipelines/{objectType}/{pipelineId}/audit", "GET",
     "/crm/v3/pipelines/deals/default/audit"),
    ("properties", "GET /crm/v3/properties/{objectType}/groups", "GET",
     "/crm/v3/properties/deals/groups/x/y"),
    ("associations_schema_v4", "GET /crm/associations/v4/definitions/configurations/all",
     "GET", "/crm/associations/v4/definitions/configurations/all"),
    ("pipelines", "POST /crm/v3/pipelines/{objectType}", "POST", "/crm/v3/pipelines/deals"),
    ("associations_v4", "POST /crm/v4/associations/usage/high-usage-report/{userId}", "POST",
     "/crm/v4/associations/usage/high-usage-report/1"),
]  # fmt: skip


@pytest.fixture(scope="module")
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        sandbox.limits(max=100_000, interval_ms=10_000)
        yield sandbox


@pytest.fixture(scope="module")
def apis(sb: HubSpotSandbox) -> Apis:
    return Apis(sb.base)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_served_endpoint_answers_as_the_spec_documents(
    sb: HubSpotSandbox, apis: Apis, case: Case
) -> None:
    """The answer's status is documented for the operation and its body matches the schema."""
    status, body = case.call(sb, apis)
    assert_conforms(case.spec, case.operation, status, body)


@pytest.mark.parametrize(("spec_name", "operation", "method", "path"), UNSERVED)
def test_documented_endpoints_the_sandbox_does_not_serve_answer_hubspots_error(
    sb: HubSpotSandbox, spec_name: str, operation: str, method: str, path: str
) -> None:
    """An operation in the spec the sandbox does not implement: 404/405 with the Error body."""
    assert operation in spec(spec_name)["operations"]
    response = sb.api(method, path, json={})
    assert response.status_code in (404, 405)
    assert_conforms(spec_name, operation, response.status_code, response.json())


def test_the_validator_catches_a_wrong_body() -> None:
    """The validator is not a rubber stamp: a record without id and with a numeric
    property value fails the SimplePublicObject schema."""
    bad = {"properties": {"amount": 5}, "createdAt": "yesterday", "updatedAt": "x"}
    errors = validate(bad, {"$ref": "#/components/schemas/SimplePublicObject"}, spec("deals"))
    assert any("'id'" in e for e in errors)
    assert any("amount" in e for e in errors)
    assert any("date-time" in e for e in errors)


def test_every_route_of_the_sandbox_is_covered_by_a_conformance_case(sb: HubSpotSandbox) -> None:
    """No route of the app is left out of the suite: the CRM API, OAuth and whatever else
    it serves. Only the `/_sandbox` controls (faults, limits, stats) are not HubSpot's."""
    from sandbox.hubspot import create_app

    def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            if included is not None:
                yield from walk(included.routes, prefix + route.include_context.prefix)
            else:
                yield prefix + getattr(route, "path", ""), route

    served = set()
    for path, route in walk(create_app(None).routes):
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            continue
        for method in sorted((getattr(route, "methods", None) or set()) - {"HEAD"}):
            served.add(f"{method} {path}")
    covered = {c.route for c in CASES}
    assert len(served) > 20
    assert f"POST {TOKEN_INFO}" in served
    assert served - covered == set()

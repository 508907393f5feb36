"""The HubSpot sandbox's record behaviour: free-text search and its 10,000-result cap,
propertiesWithHistory, the required hs_timestamp, and line items with their products."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiError
from support.hubspot import TOKEN, HubSpotSandbox, assert_hubspot_error, running_sandbox

from sandbox.hubspot_schema import PROPERTY_INDEX
from sandbox.hubspot_search import RESULT_CAP, search

OBJ = "/crm/v3/objects"


@pytest.fixture
def sb() -> Iterator[HubSpotSandbox]:
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def hs(sb: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=sb.base)


def found(sb: HubSpotSandbox, ot: str, body: dict[str, Any]) -> list[str]:
    response = sb.api("POST", f"{OBJ}/{ot}/search", json=body)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


# -- search ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ot", "query", "expected"),
    [
        ("deals", "globex", ["1002"]),
        ("deals", "PLAT", ["1001"]),
        ("deals", "acme rollout", ["1001"]),
        ("deals", "acme pilot", []),
        ("contacts", "ada@acme", ["3001"]),
        ("contacts", "scorp", ["3002"]),
        ("companies", "oslo", ["2002"]),
    ],
)
def test_search_query_is_a_free_text_prefix_match(
    sb: HubSpotSandbox, ot: str, query: str, expected: list[str]
) -> None:
    """Each word of query begins a word of a default searchable property; all words must match."""
    assert found(sb, ot, {"query": query}) == expected


def test_search_query_combines_with_filters(sb: HubSpotSandbox) -> None:
    """query and filterGroups both apply: a matching name outside the filter is left out."""
    flt = {"propertyName": "amount", "operator": "LT", "value": "50000"}
    assert found(sb, "deals", {"query": "acme", "filterGroups": [{"filters": [flt]}]}) == []
    assert found(sb, "deals", {"query": "initech", "filterGroups": [{"filters": [flt]}]}) == [
        "1003"
    ]


def test_search_past_the_10000_cap_is_a_400(sb: HubSpotSandbox) -> None:
    """after=10000 is refused with VALIDATION_ERROR; after=9999 is still served."""
    over = sb.api("POST", f"{OBJ}/deals/search", json={"after": "10000"})
    assert_hubspot_error(over, 400, "VALIDATION_ERROR")
    assert sb.api("POST", f"{OBJ}/deals/search", json={"after": "9999"}).status_code == 200


def test_the_last_page_stops_at_the_cap() -> None:
    """With more than 10,000 hits the page ending at the cap offers no next page."""
    rows: list[tuple[str, dict[str, str | None]]] = [
        (str(i), {"dealname": f"d{i}"}) for i in range(1, RESULT_CAP + 51)
    ]
    ids, total, nxt = search(
        rows, {"limit": 100, "after": RESULT_CAP - 30}, PROPERTY_INDEX["deals"]
    )
    assert total == RESULT_CAP + 50
    assert len(ids) == 30
    assert nxt is None
    _, _, before_cap = search(
        rows, {"limit": 100, "after": RESULT_CAP - 300}, PROPERTY_INDEX["deals"]
    )
    assert before_cap == RESULT_CAP - 200


# -- history -------------------------------------------------------------------------------
def test_properties_with_history_lists_values_newest_first(sb: HubSpotSandbox, hs: HubSpot) -> None:
    """After two amount changes, propertiesWithHistory gives all three values, newest first."""
    for amount in ("19000", "21000"):
        sb.api("PATCH", f"{OBJ}/deals/1002", json={"properties": {"amount": amount}})
    deal = hs.crm.deals.basic_api.get_by_id("1002", properties_with_history=["amount"])
    values = [v.value for v in deal.properties_with_history["amount"]]
    assert values == ["21000", "19000", "18000"]
    stamps = [v.timestamp for v in deal.properties_with_history["amount"]]
    assert stamps == sorted(stamps, reverse=True)
    assert all(v.source_type == "API" for v in deal.properties_with_history["amount"])


def test_history_on_list_and_batch_read(sb: HubSpotSandbox) -> None:
    """The list page and batch read also answer propertiesWithHistory for the asked names."""
    sb.api("PATCH", f"{OBJ}/deals/1003", json={"properties": {"dealstage": "closedwon"}})
    page = sb.api(
        "GET", f"{OBJ}/deals", params={"propertiesWithHistory": "dealstage", "limit": 5}
    ).json()
    by_id = {r["id"]: r for r in page["results"]}
    assert [v["value"] for v in by_id["1003"]["propertiesWithHistory"]["dealstage"]] == [
        "closedwon",
        "qualifiedtobuy",
    ]
    body = {"inputs": [{"id": "1003"}], "propertiesWithHistory": ["dealstage"], "properties": []}
    read = sb.api("POST", f"{OBJ}/deals/batch/read", json=body).json()
    assert len(read["results"][0]["propertiesWithHistory"]["dealstage"]) == 2


def test_no_history_unless_asked(sb: HubSpotSandbox) -> None:
    """Without propertiesWithHistory the answer carries none."""
    assert "propertiesWithHistory" not in sb.api("GET", f"{OBJ}/deals/1001").json()


# -- hs_timestamp ------------------------------------------------------------------------
@pytest.mark.parametrize("ot", ["notes", "tasks"])
def test_notes_and_tasks_need_hs_timestamp(sb: HubSpotSandbox, ot: str) -> None:
    """Creating a note or task without hs_timestamp is a 400 naming it (single, batch, upsert)."""
    props = {"hs_note_body": "x"} if ot == "notes" else {"hs_task_subject": "x"}
    single = sb.api("POST", f"{OBJ}/{ot}", json={"properties": props})
    assert_hubspot_error(single, 400, "VALIDATION_ERROR")
    assert single.json()["errors"][0]["code"] == "REQUIRED_PROPERTY"
    assert "hs_timestamp" in single.json()["message"]
    batch = sb.api("POST", f"{OBJ}/{ot}/batch/create", json={"inputs": [{"properties": props}]})
    assert_hubspot_error(batch, 400, "VALIDATION_ERROR")
    upsert = {"inputs": [{"id": "k1", "idProperty": "handoff_key", "properties": props}]}
    assert_hubspot_error(sb.api("POST", f"{OBJ}/{ot}/batch/upsert", json=upsert), 400)
    assert sb.api("GET", f"{OBJ}/{ot}").json()["results"] == []


def test_an_update_need_not_repeat_hs_timestamp(sb: HubSpotSandbox) -> None:
    """hs_timestamp is required on create only: a later PATCH without it succeeds."""
    props = {"hs_task_subject": "x", "hs_timestamp": "2026-12-01T00:00:00Z"}
    task = sb.api("POST", f"{OBJ}/tasks", json={"properties": props}).json()
    patch = sb.api(
        "PATCH", f"{OBJ}/tasks/{task['id']}", json={"properties": {"hs_task_status": "COMPLETED"}}
    )
    assert patch.status_code == 200


# -- line items ------------------------------------------------------------------------------
def test_a_line_item_computes_its_amount_and_takes_the_products_defaults(hs: HubSpot) -> None:
    """A line of 3 x product 4002 at 10% off: name, price and unit cost from the product,
    amount 3 x 1500 x 0.9 = 4050, and it reads back through the line items API."""
    api = hs.crm.line_items.basic_api
    line = api.create(
        {"properties": {"hs_product_id": "4002", "quantity": "3", "hs_discount_percentage": "10"}}
    )
    read = api.get_by_id(line.id, properties=["name", "price", "hs_cost_of_goods_sold", "amount"])
    assert read.properties["name"] == "Onboarding days"
    assert read.properties["price"] == "1500"
    assert read.properties["hs_cost_of_goods_sold"] == "900"
    assert read.properties["amount"] == "4050"


def test_changing_quantity_or_discount_recomputes_the_amount(sb: HubSpotSandbox) -> None:
    """PATCHing quantity and then a unit discount keeps amount equal to the net price."""
    props = {"name": "Custom work", "price": "200", "quantity": "5"}
    line = sb.api("POST", f"{OBJ}/line_items", json={"properties": props}).json()
    assert line["properties"].get("amount") in (None, "1000")
    after = sb.api(
        "PATCH",
        f"{OBJ}/line_items/{line['id']}",
        json={"properties": {"quantity": "2", "discount": "50"}},
    )
    shown = sb.api("GET", f"{OBJ}/line_items/{line['id']}", params={"properties": "amount"}).json()
    assert after.status_code == 200
    assert shown["properties"]["amount"] == "300"


def test_amount_is_read_only_and_the_product_must_exist(sb: HubSpotSandbox) -> None:
    """Writing amount is READ_ONLY_VALUE; an hs_product_id that names no product is a 400."""
    ro = sb.api("POST", f"{OBJ}/line_items", json={"properties": {"amount": "5"}})
    assert ro.json()["errors"][0]["code"] == "READ_ONLY_VALUE"
    missing = sb.api("POST", f"{OBJ}/line_items", json={"properties": {"hs_product_id": "999"}})
    assert_hubspot_error(missing, 400, "VALIDATION_ERROR")


def test_line_items_associate_to_a_deal_and_show_in_its_activity(sb: HubSpotSandbox) -> None:
    """A line created with association type 20 to deal 1001 is listed from the deal (type 19)."""
    assoc = [
        {
            "to": {"id": "1001"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}],
        }
    ]
    props = {"hs_product_id": "4001", "quantity": "2", "hs_discount_percentage": "45"}
    line = sb.api(
        "POST", f"{OBJ}/line_items", json={"properties": props, "associations": assoc}
    ).json()
    from_deal = sb.api("GET", "/crm/v4/objects/deals/1001/associations/line_items").json()[
        "results"
    ]
    assert [(r["toObjectId"], r["associationTypes"][0]["typeId"]) for r in from_deal] == [
        (line["id"], 19)
    ]
    activity = sb.activity("1001")["line_items"]
    assert [(a["id"], a["amount"]) for a in activity] == [(line["id"], "44000")]


def test_products_are_seeded_and_searchable(sb: HubSpotSandbox, hs: HubSpot) -> None:
    """The seeded products are listed by the products API and found by SKU in search."""
    names = {p.properties["name"] for p in hs.crm.products.basic_api.get_page(limit=10).results}
    assert {"Platform licence", "Onboarding days", "Premium support"} <= names
    assert found(sb, "products", {"query": "onb-d"}) == ["4002"]
    with pytest.raises(ObjectsApiError):
        hs.crm.objects.basic_api.get_by_id("products", "4999")


def test_a_store_from_before_products_gains_them_on_restart(tmp_path: Path) -> None:
    """Reopening a seeded store that lacks the products adds them, and only them."""
    path = tmp_path / "old.sqlite3"
    with running_sandbox(path) as first:
        first.api("PATCH", f"{OBJ}/deals/1001", json={"properties": {"amount": "1"}})
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("DELETE FROM objects WHERE type='products'")
    with running_sandbox(path) as second:
        products = second.api("GET", f"{OBJ}/products").json()["results"]
        deal = second.api("GET", f"{OBJ}/deals/1001").json()
    assert sorted(p["id"] for p in products) == ["4001", "4002", "4003"]
    assert deal["properties"]["amount"] == "1"

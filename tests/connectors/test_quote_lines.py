"""Quote lines read through the real client libraries from both sandboxes: HubSpot line
items associated with a deal, Salesforce opportunity products with their price book
entry and cost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce.format import format_soql
from support.hubspot import HubSpotSandbox
from support.hubspot import running_sandbox as hubspot_sandbox
from support.salesforce import (
    API,
    Sandbox,
    auth_for,
    connector_for,
    running_sandbox,
    seeded_opportunity,
)

from connectors.errors import NotFound
from connectors.lines import LineReader

OBJ = "/crm/v3/objects"
TO_DEAL_TYPE = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}
LINE_TO_DEAL = [{"to": {"id": "1001"}, "types": [TO_DEAL_TYPE]}]


@pytest.fixture
def hub() -> Iterator[HubSpotSandbox]:
    with hubspot_sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def sf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sf-lines")) as sandbox:
        yield sandbox


@pytest.fixture
def sf(sf_server: Sandbox) -> Iterator[Sandbox]:
    yield sf_server
    sf_server.reset()


def test_hubspot_reads_the_line_items_associated_with_a_deal(hub: HubSpotSandbox) -> None:
    """Product defaults, quantity, discount and hs_cost_of_goods_sold become quote lines."""
    hs = hub.connector()
    assert isinstance(hs, LineReader)
    assert hs.get_line_items("1001").lines == []
    for props in (
        {"hs_product_id": "4001", "quantity": "2"},
        {"hs_product_id": "4002", "quantity": "10", "hs_discount_percentage": "45"},
        {"name": "Custom work", "quantity": "1", "price": "2000", "discount": "500"},
    ):
        body = {"properties": props, "associations": LINE_TO_DEAL}
        assert hub.api("POST", f"{OBJ}/line_items", json=body).status_code == 201
    got = hs.get_line_items("1001")
    shown = [(x.name, x.quantity, x.unit_price, x.discount_percent, x.unit_cost) for x in got.lines]
    assert shown == [
        ("Platform licence", 2, 40_000, 0, 8000),
        ("Onboarding days", 10, 1500, 45, 900),
        ("Custom work", 1, 2000, 25, None),
    ]  # fmt: skip
    assert got.lines[1].margin_percent == pytest.approx(-9.1, abs=0.05)
    assert not got.truncated


def test_hubspot_lines_of_an_unknown_deal_are_not_found(hub: HubSpotSandbox) -> None:
    """A deal that does not exist is NotFound, never an empty quote."""
    with pytest.raises(NotFound):
        hub.connector().get_line_items("424242")


def test_salesforce_reads_opportunity_products_with_list_price_and_cost(sf: Sandbox) -> None:
    """The seeded Acme lines: list price from the price book entry, Cost__c as line cost."""
    connector = connector_for(sf, auth_for(sf, "client_credentials"))
    opp = str(seeded_opportunity(sf, "Acme rollout")["Id"])
    got = connector.get_line_items(opp)
    assert [(x.name, x.quantity, x.unit_price, x.discount_percent) for x in got.lines] == [
        ("Platform licence", 40, 1000, 0),
        ("Onboarding package", 1, 8000, 0),
    ]
    assert [x.cost for x in got.lines] == [12_000, 5000]


def test_salesforce_counts_a_sales_price_below_list_as_discount(sf: Sandbox) -> None:
    """UnitPrice 900 on a 1,000 list, then 10% Discount: the line is 19% off list."""
    connector = connector_for(sf, auth_for(sf, "client_credentials"))
    opp = str(seeded_opportunity(sf, "Acme rollout")["Id"])
    q = format_soql("SELECT Id FROM Product2 WHERE ProductCode = {}", "PLAT-100")
    product = sf.rest("GET", f"{API}/query/", params={"q": q}).json()["records"][0]["Id"]
    body = {"OpportunityId": opp, "Product2Id": product, "Quantity": 5, "UnitPrice": 900,
            "Discount": 10, "Cost__c": 1500}  # fmt: skip
    assert sf.rest("POST", f"{API}/sobjects/OpportunityLineItem/", json=body).status_code == 201
    line = connector.get_line_items(opp).lines[-1]
    assert (line.unit_price, line.discount_percent, line.unit_cost) == (1000, 19, 300)
    assert line.net == 4050

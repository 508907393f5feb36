"""Salesforce quote lines: an Opportunity's OpportunityLineItems (opportunity products).

One SOQL query reads the lines with their Product2 name. Each line has its list price
(``ListPrice``, from its PricebookEntry), its sales price (``UnitPrice``), a further
``Discount`` percent, and its cost in the custom field ``Cost__c`` (the line's total
cost, the field ops add for margin; `COST_FIELD`). The canonical line's discount is
against the list price, so a sales price set below the list price counts as discount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simple_salesforce.format import format_soql

from connectors.lines import MAX_LINES, QuoteLine, QuoteLines

if TYPE_CHECKING:
    from connectors.salesforce import SalesforceConnector

COST_FIELD = "Cost__c"
FIELDS = (
    f"Id, Name, Product2Id, Product2.Name, Quantity, UnitPrice, ListPrice, Discount, {COST_FIELD}"
)


def _number(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def line_of(row: dict[str, Any]) -> QuoteLine:
    """One OpportunityLineItem in canonical form."""
    quantity = _number(row.get("Quantity")) or 0.0
    sales = _number(row.get("UnitPrice")) or 0.0
    listed = _number(row.get("ListPrice")) or sales
    extra = _number(row.get("Discount")) or 0.0
    net_unit = sales * (1 - extra / 100)
    discount = (1 - net_unit / listed) * 100 if listed > 0 else 0.0
    product = row.get("Product2") or {}
    cost = _number(row.get(COST_FIELD))
    return QuoteLine(
        id=str(row.get("Id") or ""),
        name=str(product.get("Name") or row.get("Name") or "")[:255],
        product_id=row.get("Product2Id") or None,
        quantity=quantity,
        unit_price=listed,
        discount_percent=round(min(max(discount, 0.0), 100.0), 4),
        unit_cost=None if cost is None or quantity <= 0 else cost / quantity,
    )


def read_lines(c: SalesforceConnector, deal_id: str) -> QuoteLines:
    """The opportunity's products, oldest first (at most `MAX_LINES`)."""
    soql = format_soql(
        f"SELECT {FIELDS} FROM OpportunityLineItem WHERE OpportunityId = {{}} "  # noqa: S608
        f"ORDER BY CreatedDate ASC, Id ASC LIMIT {MAX_LINES + 1}",
        deal_id,
    )
    rows = c._call("OpportunityLineItem", deal_id, lambda sf: sf.query(soql)["records"])
    lines = [line_of(row) for row in rows[:MAX_LINES]]
    return QuoteLines(deal_id=deal_id, lines=lines, truncated=len(rows) > MAX_LINES)

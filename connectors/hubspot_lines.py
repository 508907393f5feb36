"""HubSpot quote lines: the line items associated with a deal.

Two reads: the deal's ``line_items`` associations (v4, paged), then one batch read of
those line items (up to 100 a call) with their product, quantity, unit price, discount
(``hs_discount_percentage``, or the per-unit ``discount``) and unit cost
(``hs_cost_of_goods_sold``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

from connectors import hubspot_wire as wire
from connectors.hubspot_wire import BATCH_LIMIT, UnexpectedShape
from connectors.lines import MAX_LINES, QuoteLine, QuoteLines

if TYPE_CHECKING:
    from connectors.hubspot import HubSpotConnector

LINE_PROPERTIES = [
    "name",
    "hs_product_id",
    "quantity",
    "price",
    "hs_discount_percentage",
    "discount",
    "hs_cost_of_goods_sold",
]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _associated_ids(data: Any) -> tuple[list[str], str | None]:
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("an associations page without results")
    ids = [str(r.to_object_id) for r in data.results]
    paging = getattr(data, "paging", None)
    nxt = getattr(paging, "next", None) if paging else None
    return ids, getattr(nxt, "after", None) if nxt else None


def line_of(line_id: str, props: dict[str, str]) -> QuoteLine:
    """One HubSpot line item in canonical form."""
    quantity = _number(props.get("quantity")) or 0.0
    price = _number(props.get("price")) or 0.0
    percent = _number(props.get("hs_discount_percentage"))
    if percent is None and price > 0:  # a per-unit discount, as a percentage of the price
        percent = (_number(props.get("discount")) or 0.0) / price * 100
    return QuoteLine(
        id=line_id,
        name=(props.get("name") or "")[:255],
        product_id=props.get("hs_product_id") or None,
        quantity=quantity,
        unit_price=price,
        discount_percent=round(min(max(percent or 0.0, 0.0), 100.0), 4),
        unit_cost=_number(props.get("hs_cost_of_goods_sold")),
    )


def read_lines(c: HubSpotConnector, deal_id: str) -> QuoteLines:
    """The deal's line items, in association order (at most `MAX_LINES`)."""
    ids: list[str] = []
    after: str | None = None
    while len(ids) <= MAX_LINES:
        page, after = c._call(
            "deals",
            deal_id,
            partial(
                c._assoc.get_page_with_http_info,
                "deals",
                deal_id,
                "line_items",
                limit=500,
                after=after,
                **c._opts(),
            ),
            _associated_ids,
        )
        ids += page
        if after is None:
            break
    truncated = len(ids) > MAX_LINES
    ids = list(dict.fromkeys(ids))[:MAX_LINES]
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), BATCH_LIMIT):
        body = BatchReadInputSimplePublicObjectId(
            properties=LINE_PROPERTIES,
            properties_with_history=[],
            inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + BATCH_LIMIT]],
        )
        rows = c._call(
            "line_items",
            deal_id,
            partial(c._batch.read_with_http_info, "line_items", body, archived=False, **c._opts()),
            partial(wire.batch_records, tolerate_missing=True),
        )
        found |= dict(rows)
    lines = [line_of(i, found[i]) for i in ids if i in found]
    return QuoteLines(deal_id=deal_id, lines=lines, truncated=truncated)

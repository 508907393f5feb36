"""Line items of the HubSpot sandbox: what HubSpot computes when a line is written.

A line item names its product with ``hs_product_id`` (which must exist); the product's
name, price, SKU, unit cost and description fill whatever the line does not set.
``amount`` is read-only and computed as HubSpot does: quantity x unit price, less
``hs_discount_percentage`` percent or, failing that, the per-unit ``discount``. A line
is linked to its deal with the v4 associations (``line_item_to_deal`` is type 20).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _number(text: str | None) -> float | None:
    try:
        return None if text in (None, "") else float(str(text))
    except ValueError:
        return None


def _format(number: float) -> str:
    rounded = round(number, 6)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


PRODUCT_DEFAULTS = ("name", "price", "hs_sku", "hs_cost_of_goods_sold", "description")


def derived(
    ot: str,
    props: dict[str, Any],
    product: Callable[[str], dict[str, str | None]],
    changed: set[str] | None = None,
) -> dict[str, Any]:
    """A line item's computed values: the product's defaults for what the line does not
    set (on create, or when ``hs_product_id`` changes), and ``amount``, the net price:
    quantity x unit price, less ``hs_discount_percentage`` % or the unit ``discount``."""
    if ot != "line_items":
        return props
    out = dict(props)
    if out.get("hs_product_id") and (changed is None or "hs_product_id" in changed):
        defaults = product(str(out["hs_product_id"]))
        for name in PRODUCT_DEFAULTS:
            unset = out.get(name) is None and (changed is None or name not in changed)
            if unset and defaults.get(name) is not None:
                out[name] = defaults[name]
    quantity, price = _number(out.get("quantity")), _number(out.get("price"))
    if quantity is None or price is None:
        out.pop("amount", None)
        return out
    percent = _number(out.get("hs_discount_percentage"))
    unit = price * (1 - percent / 100) if percent else price - (_number(out.get("discount")) or 0)
    out["amount"] = _format(quantity * unit)
    return out

"""Quote lines: the products, quantities, prices, discounts and unit costs of a deal.

A CRM keeps them apart from the deal (HubSpot line items associated with the deal,
Salesforce OpportunityLineItems with their Product2 and PricebookEntry). Connectors that
can read them implement `LineReader`; the in-memory connector keeps them per deal.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

#: Lines read per deal; a quote longer than this is cut (and says so).
MAX_LINES = 200


class QuoteLine(BaseModel):
    """One line of a deal's quote, in canonical form."""

    id: str = ""
    name: str = Field(default="", max_length=255)
    product_id: str | None = None
    quantity: float = 1.0
    unit_price: float = Field(default=0.0, description="List price per unit.")
    discount_percent: float = Field(default=0.0, ge=0, le=100)
    unit_cost: float | None = Field(
        default=None, description="Cost per unit (HubSpot hs_cost_of_goods_sold, Cost__c)."
    )

    @property
    def list_total(self) -> float:
        return round(self.quantity * self.unit_price, 2)

    @property
    def net(self) -> float:
        """What the customer pays for the line, after its discount."""
        return round(self.list_total * (1 - self.discount_percent / 100), 2)

    @property
    def cost(self) -> float | None:
        return None if self.unit_cost is None else round(self.quantity * self.unit_cost, 2)

    @property
    def margin_percent(self) -> float | None:
        """The line's real margin in percent of its net price (None without a cost)."""
        if self.cost is None:
            return None
        if self.net <= 0:
            return -100.0
        return round((self.net - self.cost) / self.net * 100, 1)


class QuoteLines(BaseModel):
    """The lines a connector read for one deal."""

    deal_id: str
    lines: list[QuoteLine] = Field(default_factory=list)
    truncated: bool = False


@runtime_checkable
class LineReader(Protocol):
    """A connector that can read a deal's quote lines."""

    def get_line_items(self, deal_id: str) -> QuoteLines:
        """The deal's lines (at most `MAX_LINES`); none when the deal has none."""
        ...

"""The quote as the deal desk sees it: terms built from the CRM's lines, and the metrics
approval rules look at (`workflows.policy_quote`). Pure and deterministic.

With lines, the terms' `amount` is the lines' list total and `discount_percent` the
effective discount (what the customer saves on the whole quote): the lines' own
discounts, then the deal's discount field on top (`deal_discount_percent`, as a
quote-level discount). The deal's amount field counts only for a deal without lines.
"""

from __future__ import annotations

from connectors.lines import QuoteLine
from workflows.policy_quote import Metric
from workflows.records import Terms


def with_lines(terms: Terms, lines: list[QuoteLine]) -> Terms:
    """`terms` with `lines`: amount and discount follow the lines when there are any,
    with the deal's own discount (`deal_discount_percent`) on top of theirs; without
    lines the deal's discount is the discount."""
    header = terms.deal_discount_percent
    if not lines:
        return terms.model_copy(update={"lines": [], "discount_percent": header})
    listed = round(sum(line.list_total for line in lines), 2)
    net = round(sum(line.net for line in lines) * (1 - header / 100), 2)
    discount = round((1 - net / listed) * 100, 2) if listed > 0 else 0.0
    return terms.model_copy(
        update={"lines": list(lines), "amount": listed, "discount_percent": discount}
    )


def metric(terms: Terms, name: Metric, default_cost_ratio: float) -> float | None:
    """The value of one metric for `terms`; None when the quote does not say."""
    match name:
        case "discount_percent":
            return terms.discount_percent
        case "max_line_discount_percent":
            return max((line.discount_percent for line in terms.lines), default=None)
        case "margin_percent":
            return terms.margin_percent(default_cost_ratio)
        case "amount":
            return terms.amount
        case "payment_terms_days":
            days = terms.payment_terms_days
            return None if days is None else float(days)
        case "contract_months":
            months = terms.contract_months
            return None if months is None else float(months)
        case "non_standard_terms":
            return 1.0 if terms.non_standard_terms else 0.0


def lines_text(terms: Terms, currency: str, default_cost_ratio: float) -> list[str]:
    """One line of words per quote line, then the deal's margin and where it comes from."""
    return [
        *(line_words(line, currency) for line in terms.lines),
        margin_text(terms, default_cost_ratio),
    ]


#: Where a margin's cost comes from, in words (status, pages, notes).
SOURCE_WORDS = {
    "lines": "from line costs",
    "lines+ratio": "from line costs, flat ratio for lines without one",
    "cost": "from the deal's cost",
    "ratio": "estimated: flat cost ratio, no cost in the CRM",
}


def margin_words(percent: float | None, source: str) -> str:
    """`real margin 50.4% (from line costs)`; an estimate says so."""
    if percent is None:
        return "real margin -"
    return f"real margin {percent:g}% ({SOURCE_WORDS.get(source, source)})"


def margin_text(terms: Terms, default_cost_ratio: float) -> str:
    """The deal's real margin in words, naming where its cost comes from."""
    source = terms.margin_source()
    words = margin_words(terms.margin_percent(default_cost_ratio), source)
    if source == "ratio":
        words = words.replace("flat cost ratio", f"flat {default_cost_ratio:.0%} cost ratio")
    return words


def line_words(line: QuoteLine, currency: str = "") -> str:
    """One quote line in words: quantity, list price, discount, net and margin."""
    margin = line.margin_percent
    cost = f"margin {margin:g}%" if margin is not None else "no cost (ratio used)"
    unit = f" {currency}" if currency else ""
    return (
        f"{line.name or line.product_id or line.id}: {line.quantity:g} x "
        f"{line.unit_price:,.2f}{unit}, {line.discount_percent:g}% off → "
        f"{line.net:,.2f}{unit}; {cost}"
    )

"""The quote lines of a handoff, read from the CRM when it opens and on every change.

A handoff opened with this code (`workflow.patched(QUOTE_LINES)`) marks its state
`quote`: it reads the deal's lines (HubSpot line items, Salesforce opportunity products)
and the quote fields below, its terms follow the lines, and the policy's quote rules
apply to it. Every `deal_changed` re-reads the lines, since a line edit reaches Handoff
as a change of its deal (Salesforce rolls lines up into `Amount`; a HubSpot webhook
names the deal). Handoffs opened before keep one amount and one discount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, DealRef
    from connectors.lines import QuoteLine, QuoteLines
    from connectors.mapping import TRUTHY

from workflows.kit.patches import patched
from workflows.kit.state import DeskState
from workflows.options import CRM_READ
from workflows.quote import with_lines
from workflows.records import Terms

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: the handoff reads its quote lines and applies quote rules.
QUOTE_LINES = "quote-lines"
#: Canonical deal fields the quote rules read (map them in the policy's `field_mapping`).
PAYMENT_TERMS_DAYS, CONTRACT_MONTHS, NON_STANDARD = (
    "payment_terms_days",
    "contract_months",
    "non_standard_terms",
)
QUOTE_FIELDS = (PAYMENT_TERMS_DAYS, CONTRACT_MONTHS, NON_STANDARD)


def _whole(text: str | None) -> int | None:
    try:
        return int(float(text)) if text and text.strip() else None
    except ValueError:
        return None


def with_quote_fields(terms: Terms, fields: dict[str, str]) -> Terms:
    """`terms` with the quote fields `fields` carries (others unchanged)."""
    changes: dict[str, object] = {}
    if PAYMENT_TERMS_DAYS in fields:
        changes["payment_terms_days"] = _whole(fields[PAYMENT_TERMS_DAYS])
    if CONTRACT_MONTHS in fields:
        changes["contract_months"] = _whole(fields[CONTRACT_MONTHS])
    if NON_STANDARD in fields:
        changes["non_standard_terms"] = fields[NON_STANDARD].strip().lower() in TRUTHY
    return terms.model_copy(update=changes)


class QuoteReader:
    """Reads one handoff's quote from the CRM (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow, state: DeskState) -> None:
        self._h, self._st = h, state

    async def open(self, got: QuoteLines | None = None) -> None:
        """At the handoff's start: read the lines (or take those the opening read, `got`);
        the terms follow them.

        The handoff counts as quoted only once the lines are in: a CRM change handled
        while they are read sees the terms as they were, and the lines then go on top of
        the terms as that change left them (never on a copy taken before it)."""
        st = self._st
        if got is not None:
            lines = self._kept(got)
        elif not patched(self._h, QUOTE_LINES):
            return
        else:
            lines = await self._lines()
        fields = st.deal.fields if st.deal else {}
        terms = st.terms.model_copy(update={"deal_discount_percent": st.terms.discount_percent})
        st.terms = with_lines(with_quote_fields(terms, fields), lines)
        st.quote = True

    async def read(self, terms: Terms) -> Terms:
        """`terms` with the deal's lines as the CRM holds them now."""
        return with_lines(terms, await self._lines())

    async def _lines(self) -> list[QuoteLine]:
        got = await workflow.execute_activity_method(
            CrmActivities.get_line_items, DealRef(deal_id=self._st.deal_id), **CRM_READ
        )
        return self._kept(got)

    def _kept(self, got: QuoteLines) -> list[QuoteLine]:
        if got.truncated:
            self._h.audit.record("info", f"the quote has more than {len(got.lines)} lines")
        return got.lines

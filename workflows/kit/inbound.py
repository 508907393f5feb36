"""Inbound CRM changes: `deal_changed` messages from HubSpot webhooks and the
Salesforce change feed, deduplicated by event id.

Changed fields update the deal as Handoff knows it, ticked evidence fields become
evidence, the contract's missing fields are re-checked, and the workflow's own
`on_deal_changed` hook reacts (for example to new terms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.kit.dispatch import Handler, No
from workflows.messages import DealChangedIn
from workflows.names import Msg

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: Event ids remembered for deduplication (older ones are forgotten).
SEEN_EVENTS = 200


class Inbound:
    """CRM changes for one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.DEAL_CHANGED, Handler(DealChangedIn, _accept, self._apply))]

    async def _apply(self, msg: DealChangedIn) -> str:
        h, st = self._h, self._h.state
        if msg.event_id:
            if msg.event_id in st.seen_events:
                return "duplicate event ignored"
            st.seen_events = [*st.seen_events[-(SEEN_EVENTS - 1) :], msg.event_id]
        if st.deal is not None:
            st.deal.fields.update(msg.fields)
        for kind in h.policy.evidence_in_fields(msg.fields):
            h.evidence.add_from_crm(kind, msg.event_id)
        h.contracts.fields_changed()
        h.on_deal_changed(msg.fields)
        return "change applied"


def _accept(msg: DealChangedIn) -> No | None:
    return None

"""Inbound CRM changes: `deal_changed` messages from HubSpot webhooks and the
Salesforce change feed, deduplicated by event id.

Changed fields newer than those applied update the deal as Handoff knows it, ticked
evidence fields become evidence (where the policy lets the CRM record it), the
contract's missing fields are re-checked, stage, owner and terms changes act on the
handoff (`workflows.kit.crm_truth`), and the workflow's `on_deal_changed` hook reacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.kit.crm_truth import CrmTruth
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
        self._truth = CrmTruth(h)

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.DEAL_CHANGED, Handler(DealChangedIn, _accept, self._apply))]

    async def _apply(self, msg: DealChangedIn) -> str:
        h, st = self._h, self._h.state
        if msg.event_id:
            if msg.event_id in st.seen_events:
                return "duplicate event ignored"
            st.seen_events = [*st.seen_events[-(SEEN_EVENTS - 1) :], msg.event_id]
        fields = self._truth.newer(msg)
        moved = self._truth.moved(fields)
        if st.deal is not None:
            st.deal.fields.update(fields)
        for kind in h.policy.evidence_in_fields(fields):
            h.evidence.add_from_crm(kind, msg.event_id)
        await h.contracts.fields_changed()
        await self._truth.act(moved, msg.changed_by or f"{st.crm}@crm")
        h.on_deal_changed(fields)
        return "change applied" if fields else "older than what is applied: ignored"


def _accept(msg: DealChangedIn) -> No | None:
    return None

"""Turning CRM changes into workflow messages: the sink both webhook ingress and the
change-feed poller deliver to, and the change-feed's dispatch activity.

A `DealEvents` sink is idempotent by `event_id`: the target workflow remembers recent
ids, so a redelivered change (a retried activity, a duplicated webhook) acts once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field
from temporalio import activity

from connectors.base import DealChange
from connectors.mapping import evidence_in_fields


@runtime_checkable
class DealEvents(Protocol):
    """What a CRM event becomes on the workflow side (implemented against Temporal)."""

    async def deal_entered_trigger(self, crm: str, deal_id: str, event_id: str) -> None:
        """The deal was created or entered a trigger stage: start its lead-to-cash workflow
        (signal-with-start, ID ``lead-to-cash-<crm>-<deal>``); a no-op if already started."""
        ...

    async def evidence_arrived(self, crm: str, deal_id: str, kind: str, event_id: str) -> None:
        """A CRM field proving evidence `kind` became truthy: signal ``add_evidence``."""
        ...

    async def deal_changed(
        self,
        crm: str,
        deal_id: str,
        fields: dict[str, str],
        event_id: str,
        occurred_at: datetime | None = None,
        changed_by: str | None = None,
    ) -> None:
        """Other mapped fields changed (canonical name → new value): signal ``deal_changed``
        with when the CRM made the change, so the workflow drops stale deliveries, and
        the CRM user who made it (the audit trail names them)."""
        ...


class DispatchRequest(BaseModel):
    """A page of CRM changes to deliver, with the policy rules that route them."""

    crm: str
    changes: list[DealChange]
    trigger_crm_stages: list[str]
    evidence_fields: dict[str, str] = Field(default_factory=dict)


class DispatchResult(BaseModel):
    started_or_signalled: int
    #: Rows Handoff itself wrote last, delivered as changes only (the name is kept:
    #: recorded histories hold it).
    ignored_echoes: int


def event_id(change: DealChange) -> str:
    """A change's identity: the same change read twice gets the same id."""
    return f"{change.deal_id}@{change.changed_at.isoformat()}"


def start_event_id(change: DealChange) -> str:
    """The id of the start a change in a trigger stage asks for. Not the change's own id:
    the workflow drops a message whose id it has seen, so the (empty) start message would
    swallow the change delivered right after it (an owner or terms edit made while the
    deal is still in its trigger stage never arrived)."""
    return f"{event_id(change)}:start"


class FeedActivities:
    """Delivers change-feed pages to a `DealEvents` sink."""

    def __init__(self, sink: DealEvents) -> None:
        self.sink = sink

    @activity.defn(name="feed.dispatch")
    async def dispatch(self, req: DispatchRequest) -> DispatchResult:
        """Route each change: trigger stage → start; evidence fields → evidence; else change.

        A row Handoff itself wrote last (an echo) is still delivered as a change, never
        as a start: the feed reads whole rows, so a rep's edit that Handoff's write-back
        followed within one poll is in that row and nowhere else. The workflow drops
        what it already holds (values it wrote, terms that did not move)."""
        done = echoes = 0
        for change in req.changes:
            eid, fields = event_id(change), change.fields
            if change.by_handoff:
                echoes += 1
                await self.sink.deal_changed(
                    req.crm, change.deal_id, fields, eid, change.changed_at, change.changed_by
                )
                continue
            if fields.get("crm_stage") in req.trigger_crm_stages:
                await self.sink.deal_entered_trigger(
                    req.crm, change.deal_id, start_event_id(change)
                )
            for kind in evidence_in_fields(req.evidence_fields, fields):
                await self.sink.evidence_arrived(req.crm, change.deal_id, kind, f"{eid}:{kind}")
            await self.sink.deal_changed(
                req.crm, change.deal_id, fields, eid, change.changed_at, change.changed_by
            )
            done += 1
        return DispatchResult(started_or_signalled=done, ignored_echoes=echoes)

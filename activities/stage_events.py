"""Stage events: what the stall analytics learn from the CRM write-backs and notices.

The workflows already write every stage transition, reminder and escalation to the CRM
through `crm.write_back` (and ask approvers again through `notify.request_approval`), so
the activities record those moments as events, and no workflow code changes. An event
is keyed like the write it comes from, so a retried activity records it once.

`StageRecorder` is the seam: the worker passes a store (`worker.stalls.store`); tests and
the in-memory stack pass none. Recording never fails a CRM write: a store that is down
costs analytics, never a handoff (it is logged and counted).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, Protocol

import structlog
from pydantic import BaseModel, Field

from connectors.base import WriteBack
from connectors.mapping import DealField

log = structlog.get_logger("handoff.stalls")

EventKind = Literal["wait", "reminder", "escalation", "done", "ended"]

#: Bounds of what one event stores (a CRM field or a workflow id never needs more).
MAX_ID = 200
MAX_TEXT = 300

#: The team that owns each stage (lead-to-cash, renewal); anything else is `other`.
TEAMS: dict[str, str] = {
    "qualify": "sales",
    "deal_desk": "sales",
    "close": "sales",
    "sales_to_ops": "operations",
    "delivery": "operations",
    "ops_to_billing": "billing",
    "cash": "billing",
    "window": "account_management",
    "usage": "account_management",
    "pricing": "account_management",
    "signature": "account_management",
}


#: Every team, in the order a page lists them.
TEAM_NAMES = ("sales", "operations", "billing", "account_management", "other")


def team_of(stage: str) -> str:
    return TEAMS.get(stage, "other")


class StageEvent(BaseModel):
    """One moment in a handoff's life, as the analytics store keeps it."""

    key: str = Field(max_length=2 * MAX_TEXT, description="Unique: a retry records once.")
    workflow_id: str = Field(max_length=MAX_ID)
    handoff_type: str = Field(max_length=64)
    crm: str = Field(max_length=32)
    deal_id: str = Field(max_length=MAX_ID)
    at: datetime
    kind: EventKind
    stage: str = Field(default="", max_length=64, description="Empty: the last one known.")
    waiting_on: str = Field(default="", max_length=MAX_TEXT)
    owners: list[str] = Field(default_factory=list, max_length=20)


class StageRecorder(Protocol):
    """Keeps stage events (idempotent by `StageEvent.key`)."""

    def record(self, event: StageEvent) -> None: ...


def handoff_type_of(workflow_id: str, crm: str, deal_id: str) -> str:
    """`lead-to-cash-hubspot-1001` → `lead-to-cash` (the public workflow id contract)."""
    suffix = f"-{crm}-{deal_id}"
    return workflow_id.removesuffix(suffix) if workflow_id.endswith(suffix) else workflow_id


_ESCALATE = re.compile(r":escalate(:\d+)?$")


def _text(value: object) -> str:
    return "" if value is None else str(value)[:MAX_TEXT]


def _owners(value: object) -> list[str]:
    return [o.strip()[:MAX_TEXT] for o in _text(value).split(",") if o.strip()][:20]


def from_write_back(
    batch: WriteBack, *, workflow_id: str, crm: str, at: datetime
) -> StageEvent | None:
    """The event a write-back carries, or None (a note, an exception, a task move)."""
    key, fields = batch.key, batch.fields
    kind: EventKind
    if key.endswith(":done"):
        kind = "done"
    elif ":ended:" in key or key.endswith(":ended"):
        kind = "ended"
    elif key.endswith(":remind"):
        kind = "reminder"
    elif _ESCALATE.search(key):
        kind = "escalation"
    elif DealField.HANDOFF_STAGE in fields:
        kind = "wait"
    else:
        return None
    status = _text(fields.get(DealField.HANDOFF_STATUS))
    owners = _owners(fields.get(DealField.HANDOFF_OWNER))
    if kind in ("reminder", "escalation") and batch.tasks:
        owners = sorted({t.owner_email for t in batch.tasks})
    return StageEvent(
        key=key[: 2 * MAX_TEXT],
        workflow_id=workflow_id[:MAX_ID],
        handoff_type=handoff_type_of(workflow_id, crm, batch.deal_id)[:64],
        crm=crm,
        deal_id=batch.deal_id[:MAX_ID],
        at=at,
        kind=kind,
        stage=_text(fields.get(DealField.HANDOFF_STAGE))[:64],
        waiting_on=status.removeprefix("waiting on ") if status.startswith("waiting on ") else "",
        owners=owners,
    )


def keep(recorder: StageRecorder, event: StageEvent) -> None:
    """Record an event; a store that fails is logged, never the activity's failure."""
    try:
        recorder.record(event)
    except Exception as exc:  # any store failure: analytics lose one event, the CRM write stands
        log.warning("stage event not recorded", key=event.key, error=type(exc).__name__)


def approval_nudge(
    *,
    reason: str,
    workflow_id: str,
    step: str,
    crm: str,
    deal_id: str,
    at: datetime,
    approvers: list[str],
) -> StageEvent | None:
    """A reminder or escalation of a discount approval (sent as a notice, not a CRM task);
    `step` (run id and activity id) makes its key, the same on a retry."""
    kind: EventKind
    if reason == "reminder":
        kind = "reminder"
    elif reason == "escalation":
        kind = "escalation"
    else:
        return None
    return StageEvent(
        key=f"{workflow_id}:approval:{step}"[: 2 * MAX_TEXT],
        workflow_id=workflow_id[:MAX_ID],
        handoff_type=handoff_type_of(workflow_id, crm, deal_id)[:64],
        crm=crm,
        deal_id=deal_id[:MAX_ID],
        at=at,
        kind=kind,
        stage="deal_desk",
        waiting_on="discount approval",
        owners=[a[:MAX_TEXT] for a in approvers][:20],
    )

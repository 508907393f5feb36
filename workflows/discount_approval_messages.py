"""LEGACY: what a handoff and its `DiscountApproval` child round send each other.

The child's input (`ApprovalRequest`), the progress it reports to its parent on every
change (`ApprovalProgress`), and the parent's `pause` and `supersede` signals. Only
handoffs opened before engine v2 use them; they go with `workflows/discount_approval.py`
and `workflows/kit/legacy_rounds.py`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.kit.ladder import ApprovalStep
from workflows.records import ApprovalRecord, HistoryEntry, PendingApproval, Terms

#: Signal from the parent: new terms replace this round.
SUPERSEDE = "supersede"


class ApprovalRequest(BaseModel):
    """Input: the terms to approve and the tiers still to ask, lowest first."""

    parent_id: str
    crm: str
    deal_id: str
    deal_name: str = ""
    round: int
    terms: Terms
    margin_percent: float
    steps: list[ApprovalStep]


class ApprovalProgress(BaseModel):
    """Reported to the parent on every change (its status mirrors this)."""

    round: int
    pending: PendingApproval | None
    decisions: list[ApprovalRecord] = Field(default_factory=list)
    events: list[HistoryEntry] = Field(default_factory=list)


class PauseIn(BaseModel):  # from the parent: an exception opened or closed
    paused: bool

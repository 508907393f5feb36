"""What a handoff records: the terms an approval is about, evidence, approvals,
exceptions, acceptances, the audit trail and the deal-desk conversation.

A handoff's state (`workflows.kit.state`) and its `status` (`workflows.messages`) are
made of these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from connectors.lines import QuoteLine
from workflows.kit.clock import ClockState

MarginSource = Literal["lines", "lines+ratio", "cost", "ratio"]


class Terms(BaseModel):
    """The commercial terms an approval is about. With quote lines, `amount` is their
    list total and `discount_percent` their effective discount (`workflows.quote`)."""

    amount: float = 0.0
    discount_percent: float = 0.0
    cost: float | None = None
    lines: list[QuoteLine] = Field(default_factory=list)
    deal_discount_percent: float = Field(
        default=0.0, description="With lines: the deal-level discount on top of theirs."
    )
    payment_terms_days: int | None = None
    contract_months: int | None = None
    non_standard_terms: bool = False

    @property
    def net(self) -> float:
        return round(self.amount * (1 - self.discount_percent / 100), 2)

    def margin_source(self) -> MarginSource:
        """Where the margin's cost comes from; `ratio` is the policy's flat fallback."""
        if self.lines and any(line.unit_cost is not None for line in self.lines):
            costed = all(line.unit_cost is not None for line in self.lines)
            return "lines" if costed else "lines+ratio"
        return "cost" if self.cost is not None else "ratio"

    def cost_of(self, default_cost_ratio: float) -> float:
        """The deal's cost: line costs (the ratio for a line without one), the deal's
        cost field, or the flat ratio of the list amount."""
        source = self.margin_source()
        if source.startswith("lines"):
            return sum(
                line.cost if line.cost is not None else line.list_total * default_cost_ratio
                for line in self.lines
            )
        return self.cost if self.cost is not None else self.amount * default_cost_ratio

    def margin_percent(self, default_cost_ratio: float) -> float:
        """The real margin after discount, in percent of the net price."""
        if self.net <= 0:
            return -100.0
        return round((self.net - self.cost_of(default_cost_ratio)) / self.net * 100, 1)


HistoryKind = Literal[
    "started",
    "stage",
    "evidence",
    "approval",
    "terms",
    "exception",
    "acceptance",
    "writeback",
    "reminder",
    "escalation",
    "task",
    "refused",
    "info",
    "people",
]


class HistoryEntry(BaseModel):
    """One line of the audit trail. Refused attempts have `accepted=False` and a reason."""

    at: datetime
    kind: HistoryKind
    detail: str
    by: str | None = None
    accepted: bool = True
    code: str | None = Field(default=None, description="A refusal's typed code.")


class EvidenceRecord(BaseModel):
    kind: str
    by: str
    at: datetime
    stage: str
    ref: str | None = None
    note: str | None = None


class ApprovalRecord(BaseModel):
    """A decision on one tier of the ladder, and the terms it was about."""

    tier: str
    decision: Literal["approved", "rejected", "auto"]
    approver: str
    reason: str
    at: datetime
    round: int
    discount_percent: float
    amount: float
    value: float | None = Field(
        default=None, description="For a quote rule: its metric's value that was decided."
    )


class ExceptionRecord(BaseModel):
    kind: str
    raised_by: str
    note: str
    raised_at: datetime
    stage: str
    owner: list[str]
    due_at: datetime | None = None
    clock: ClockState | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None


class PendingApproval(BaseModel):
    """The approval step asked now: its approvers, deadline, terms and progress."""

    round: int
    tier: str
    approvers: list[str]
    asked_at: datetime
    due_at: datetime | None
    escalated: bool = False
    discount_percent: float
    amount: float
    margin_percent: float
    needed: int = Field(default=1, description="Approvals the tier needs (any: 1).")
    escalations: int = Field(default=0, description="Escalation levels reached so far.")
    approved_by: list[str] = Field(
        default_factory=list, description="Who approved the tier so far (group decisions)."
    )
    value: float | None = Field(
        default=None, description="For a quote rule: its metric's value, as asked."
    )
    rule: str = Field(default="", description="For a quote rule: what it checks, in words.")


class AcceptRecord(BaseModel):
    team: str
    by: str
    at: datetime


class InfoExchange(BaseModel):
    """One deal-desk question and its answer (the conversation in `status`)."""

    round: int
    tier: str
    approver: str
    question: str
    asked_at: datetime
    answer: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None
    closed: str | None = Field(
        default=None, description="Why it closed without an answer (decided, new terms...)."
    )

    @property
    def open(self) -> bool:
        return self.answer is None and self.closed is None

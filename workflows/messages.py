"""The payloads of Handoff's signals and updates, and the `status` the query returns.

Every message model forbids unknown fields and says what is allowed, so a bad payload
sent with `temporal workflow signal` is refused with a message naming the field.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from connectors.lines import QuoteLine
from workflows.kit.clock import ClockState, SlaState
from workflows.names import Refusal, WaitingOn

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
_NEWLINES = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")


def inert(text: str) -> str:
    """Text that is safe to put in a CRM note or a terminal as quoted data: ANSI escape
    sequences are removed, line breaks become a visible ⏎ (so no reason can forge a
    line of its own), and other control and format characters (bidi overrides
    included) are dropped."""
    text = _NEWLINES.sub(" ⏎ ", _ANSI.sub("", text))
    return "".join(
        " " if ch == "\t" else ch
        for ch in text
        if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )


Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=3,
        max_length=254,
        pattern=r"^[^\s@]+@[^\s@]+$",
    ),
]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(inert),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(max_length=2000), AfterValidator(inert)]


class Message(BaseModel):
    """Base of every inbound message: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class EvidenceIn(Message):
    """`add_evidence`: typed evidence that a stage's condition holds."""

    kind: Name
    by: Email
    ref: Text | None = Field(default=None, max_length=500, description="Where it came from.")
    note: Text | None = Field(default=None, max_length=2000)


class DecisionIn(Message):
    """`approve` / `reject`: an approver's decision with its reason."""

    approver: Email
    reason: Reason
    link_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The signed link this decision came through: a link decides once, "
        "whichever API replica serves it.",
    )


class TermsIn(Message):
    """`update_terms`: new commercial terms from the deal owner."""

    by: Email
    discount_percent: float | None = Field(default=None, ge=0, le=100)
    amount: float | None = Field(default=None, gt=0)


class ExceptionIn(Message):
    """`raise_exception` / `resolve_exception`."""

    kind: Name
    by: Email
    note: Reason


class AcceptIn(Message):
    """`accept_handoff`: the receiving team accepts the handoff."""

    team: Name
    by: Email


class DelegateIn(Message):
    """`delegate_approval`: an approver hands their approval to a named delegate."""

    approver: Email
    delegate: Email
    reason: Reason


class RecallIn(Message):
    """`recall_approval`: the deal owner withdraws the approval request."""

    by: Email
    reason: Reason


class InfoRequestIn(Message):
    """`request_info`: an approver of the pending tier asks the rep a question."""

    approver: Email
    question: Reason
    link_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The signed link the question came through, if any.",
    )


class InfoAnswerIn(Message):
    """`answer_info`: the deal owner answers the open question; it goes back to the
    approver who asked."""

    by: Email
    answer: Reason


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


class SurfaceRefusalIn(Message):
    """`record_refusal`: a refusal a surface made on the handoff's behalf, before any
    message reached it: a signed link already used, forwarded or superseded, a web form
    that failed its CSRF check. The audit trail records who, what and why; nothing else
    changes (a surface only sends it for a deal it can trust: a verified link's)."""

    message: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$", description="What was attempted (a message name)."
    )
    by: Email | None = Field(default=None, description="Who attempted it, as far as known.")
    code: Refusal
    reason: Reason
    surface: Literal["signed_link", "web_page"]


class DealChangedIn(Message):
    """`deal_changed`: the CRM record changed (from a webhook or the change feed)."""

    fields: dict[str, str] = Field(default_factory=dict)
    source: str = "crm"
    event_id: str | None = None
    occurred_at: datetime | None = Field(
        default=None,
        description="When the CRM made the change (HubSpot occurredAt, Salesforce "
        "LastModifiedDate): a field older than the one already applied is dropped.",
    )
    changed_by: str | None = Field(
        default=None, max_length=254, description="The CRM user who made the change."
    )


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


class Receipt(BaseModel):
    """What an accepted update returns: what happened and where the handoff now stands."""

    accepted: bool = True
    detail: str
    stage: str
    waiting_on: WaitingOn
    pending_approval: PendingApproval | None = Field(
        default=None, description="The tier asked now, after this message (none: desk passed)."
    )


class AcceptRecord(BaseModel):
    team: str
    by: str
    at: datetime


class DealStatus(BaseModel):
    """The `status` query: what the handoff waits on, from whom, since and until when."""

    workflow_id: str
    crm: str
    deal_id: str
    workflow_type: str = "LeadToCash"
    deal_name: str = ""
    deal_owner: str = Field(default="", description="The deal's owner in the CRM.")
    stage: str
    waiting_on: WaitingOn
    waiting_for: str = Field(default="", description="In words: what exactly is awaited.")
    owner: list[str] = Field(default_factory=list)
    since: datetime | None = None
    due_at: datetime | None = None
    sla_state: SlaState = "none"
    terms: Terms = Terms()
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    pending_approval: PendingApproval | None = None
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    missing_fields: list[str] = Field(default_factory=list)
    accepted: list[AcceptRecord] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    history_dropped: int = 0
    refusals_total: int = Field(default=0, description="Refused messages, all time.")
    policy_version: str
    done: bool = False
    outcome: str = Field(default="", description="How it ended: completed, or lost in the CRM.")
    approval_round: int = 0
    margin_percent: float | None = Field(
        default=None, description="The real margin of the current terms, in percent."
    )
    margin_source: str = Field(
        default="", description="Where the margin's cost comes from: lines, cost or ratio."
    )
    conversation: list[InfoExchange] = Field(
        default_factory=list, description="Deal-desk questions to the rep and their answers."
    )

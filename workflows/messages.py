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

from workflows.kit.clock import SlaState
from workflows.names import Refusal, WaitingOn
from workflows.records import (
    AcceptRecord,
    ApprovalRecord,
    EvidenceRecord,
    ExceptionRecord,
    HistoryEntry,
    InfoExchange,
    PendingApproval,
    Terms,
)

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


class Receipt(BaseModel):
    """What an accepted update returns: what happened and where the handoff now stands."""

    accepted: bool = True
    detail: str
    stage: str
    waiting_on: WaitingOn
    pending_approval: PendingApproval | None = Field(
        default=None, description="The tier asked now, after this message (none: desk passed)."
    )


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

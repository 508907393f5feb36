"""The state every handoff workflow keeps, in one model that survives continue-as-new."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from connectors.base import Deal, FieldValue
from connectors.managers import OwnerManager
from workflows.kit.clock import ClockState
from workflows.messages import RecallIn
from workflows.names import WaitingOn
from workflows.policy import Clock, SharedPolicy
from workflows.policy_people import StandIn
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


class WaitState(BaseModel):
    """What the handoff waits on right now, from whom and since when."""

    key: str
    on: WaitingOn
    what: str
    owner: list[str]
    since: datetime
    team: str | None = Field(default=None, description="Team whose acceptance is awaited.")
    evidence: list[str] = Field(default_factory=list, description="Evidence kinds awaited.")
    written: bool = Field(default=False, description="The transition was written back.")


class OpenTask(BaseModel):
    """A CRM task Handoff opened: which wait it belongs to, and whose it is."""

    group: str
    owner: str


class HandoffState(BaseModel):
    """Common state of a handoff workflow; specific workflows subclass it."""

    crm: str
    deal_id: str
    stage: str
    stage_since: datetime = Field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    deal: Deal | None = None
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    exceptions: list[ExceptionRecord] = Field(default_factory=list)
    accepted: list[AcceptRecord] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    history_dropped: int = 0
    refusals: list[HistoryEntry] = Field(
        default_factory=list, description="The newest refused messages, kept apart."
    )
    refusals_total: int = 0
    waiting: WaitState | None = None
    clock: ClockState | None = None
    missing_fields: list[str] = Field(default_factory=list)
    seen_events: list[str] = Field(default_factory=list)
    field_times: dict[str, datetime] = Field(
        default_factory=dict, description="When the CRM last changed each applied field."
    )
    crm_written: dict[str, str] = Field(
        default_factory=dict, description="CRM fields Handoff set, as it set them (echoes)."
    )
    open_tasks: dict[str, OpenTask] = Field(
        default_factory=dict, description="Tasks Handoff opened and has not completed, by key."
    )
    tasks_to_complete: list[str] = Field(default_factory=list)
    crm_task_ids: dict[str, str] = Field(
        default_factory=dict, description="CRM ids of the tasks Handoff opened, by key."
    )
    crm_modified_at: datetime | None = Field(
        default=None,
        description="The deal's last-modified time after Handoff's latest write, while the "
        "CRM held what Handoff saw (a conditional next write; None: read and compare).",
    )
    outcome: str = ""
    pending_note: str | None = None
    pending_fields: dict[str, FieldValue] = Field(default_factory=dict)
    stand_ins: dict[str, StandIn] = Field(
        default_factory=dict, description="Who acts for whom: reassigned or away people."
    )
    crm_manager: OwnerManager | None = Field(
        default=None, description="Who manages the deal owner, as the CRM said (owner_manager)."
    )
    moved_policy: SharedPolicy | None = Field(
        default=None, description="The policy ops moved this handoff to (apply_policy)."
    )
    moved_policy_version: str | None = None
    opened_with: str | None = Field(
        default=None, description="The opening's patch id, if it takes older ones as given."
    )
    done: bool = False

    @property
    def owner_email(self) -> str:
        return self.deal.owner_email if self.deal else ""

    def has_evidence(self, kind: str) -> bool:
        return any(e.kind == kind for e in self.evidence)

    def open_exceptions(self) -> list[ExceptionRecord]:
        return [e for e in self.exceptions if e.open]


class DeskState(HandoffState):
    """A handoff whose terms go through the approval ladder: the terms, their approvals,
    and the tier asked now (all inside the deal's own workflow)."""

    terms: Terms = Terms()
    terms_version: int = 0
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    approval_round: int = 0
    pending_approval: PendingApproval | None = None
    recall: RecallIn | None = Field(default=None, description="The owner recalled the round.")
    exhausted: bool = Field(default=False, description="Nobody decided the tier in time.")
    terms_by: str | None = Field(default=None, description="Who proposed the current terms.")
    used_links: list[str] = Field(
        default_factory=list, description="Signed links already used (newest kept)."
    )
    quote: bool = Field(
        default=False, description="Reads the CRM's quote lines and applies quote rules."
    )
    conversation: list[InfoExchange] = Field(
        default_factory=list, description="Deal-desk questions and answers (newest kept)."
    )


#: What a clock does when it fires (remind or escalate), instead of the default CRM task.
ClockHook = Callable[[ClockState], Awaitable[None]]


@dataclass
class Wait:
    """A wait with an owner and a deadline: the unit every stage is made of.

    `ready` is re-checked whenever a message arrives. The optional `clock` reminds the
    owner before it is due and escalates when it passes; open exceptions pause it.
    `recheck` runs every `recheck_every` (for example to re-read the CRM record).
    `clock` is a policy `Clock` (roles) or a ready `ClockState` (resolved people);
    `on_remind`/`on_escalate` replace the default CRM reminder and escalation tasks;
    `on_start` runs once when the wait starts, after the transition is written (a notice);
    `write=False` starts the wait without writing a transition to the CRM.
    """

    key: str
    on: WaitingOn
    what: str
    owner: list[str]
    ready: Callable[[], bool]
    clock: Clock | ClockState | None = None
    starts_at: datetime | None = None
    task: str | None = None
    team: str | None = None
    evidence: list[str] = field(default_factory=list)
    recheck_every: timedelta | None = None
    recheck: Callable[[], Awaitable[None]] | None = None
    on_start: Callable[[], Awaitable[None]] | None = None
    on_remind: ClockHook | None = None
    on_escalate: ClockHook | None = None
    write: bool = True

"""The `CrmConnector` seam and the canonical records that cross it.

Canonical names are Handoff's own (``amount``, ``owner_email``, ``start_date``...). Each
connector maps them to its CRM's properties through `connectors.mapping.FieldMapping`.
Every write carries an idempotency key: calling a write twice with the same key leaves
exactly one record in the CRM and returns the same id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

FieldValue = str | float | int | bool | None


class Deal(BaseModel):
    """A deal as Handoff sees it, whatever the CRM calls its fields."""

    id: str
    name: str = ""
    crm_stage: str = ""
    amount: float | None = None
    discount_percent: float | None = None
    owner_email: str = ""
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Other canonical fields (scope, start_date, primary_contact...), as text.",
    )
    updated_at: datetime | None = None


class TaskSpec(BaseModel):
    """A CRM task: someone owes an action on the deal."""

    subject: str
    body: str = ""
    owner_email: str
    due_at: datetime | None = None
    key: str = Field(description="Idempotency key, unique per task.")


class NoteSpec(BaseModel):
    """A note on the deal: evidence or a decision, in words."""

    body: str
    key: str = Field(description="Idempotency key, unique per note.")


class BillingDocument(BaseModel):
    """An order or invoice for the billing team."""

    title: str
    amount: float
    currency: str = "USD"
    payment_terms_days: int = 30
    key: str = Field(description="Idempotency key, one document per key.")


class WriteBack(BaseModel):
    """Everything one stage transition writes: fields, notes and tasks, in one call.

    Connectors that can batch (HubSpot batch APIs, Salesforce composite) do so.
    """

    deal_id: str
    key: str = Field(description="Idempotency key of the transition; field updates use it.")
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    notes: list[NoteSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(default_factory=list)
    expected: dict[str, str | None] = Field(
        default_factory=dict,
        description="Canonical field → the value Handoff last saw (None: empty). Such a "
        "field is written only if the CRM still holds that value; otherwise it is left "
        "as the CRM has it and reported in `WriteReceipt.conflicts` (never forced).",
    )
    complete_tasks: list[str] = Field(
        default_factory=list,
        description="Keys of tasks Handoff opened earlier whose wait has ended: mark them "
        "completed (HubSpot hs_task_status=COMPLETED, Salesforce Status=Completed). A key "
        "with no task, or a task already completed, is not an error.",
    )
    reassign_tasks: dict[str, str] = Field(
        default_factory=dict,
        description="Task key → new owner email: open tasks that move to a new owner.",
    )
    open_task_ids: dict[str, str] = Field(
        default_factory=dict,
        description="Task key → the CRM id Handoff got when it opened that task, for the "
        "keys in `complete_tasks` it knows (Salesforce completes them by id, unread).",
    )
    modified_at: datetime | None = Field(
        default=None,
        description="When the deal was last modified as of Handoff's previous write "
        "(`WriteReceipt.modified_at`), while the CRM held `expected` then. Salesforce "
        "makes the write conditional on it (If-Unmodified-Since) instead of reading "
        "first; None: read and compare. Connectors without conditional writes ignore it.",
    )


class WriteReceipt(BaseModel):
    """What a write-back produced in the CRM."""

    deal_id: str
    note_ids: list[str] = Field(default_factory=list)
    task_ids: list[str] = Field(default_factory=list)
    conflicts: dict[str, str | None] = Field(
        default_factory=dict,
        description="Fields not written because the CRM changed them since Handoff last "
        "saw them: canonical field → the value the CRM holds now.",
    )
    completed_task_ids: list[str] = Field(default_factory=list)
    modified_at: datetime | None = Field(
        default=None,
        description="The deal's last-modified time right after this write, when the CRM "
        "then held every compared field as Handoff wrote or saw it (Salesforce "
        "LastModifiedDate); None when unknown or after a conflict.",
    )


class DealChange(BaseModel):
    """One change seen in the CRM's change feed."""

    deal_id: str
    changed_at: datetime
    fields: dict[str, str] = Field(default_factory=dict)
    by_handoff: bool = Field(
        default=False, description="True when Handoff itself made the change (an echo)."
    )
    changed_by: str | None = Field(
        default=None,
        max_length=254,
        description="The CRM user who made it, as the CRM names them (Salesforce: the "
        "User's email from LastModifiedById); None when the CRM does not say.",
    )


class ChangePage(BaseModel):
    """A page of changes and the cursor to resume after it."""

    changes: list[DealChange]
    cursor: str | None
    done: bool = True


@runtime_checkable
class CrmConnector(Protocol):
    """What Handoff needs from a CRM. Implementations translate errors into
    `connectors.errors` and make every write idempotent by its key."""

    crm: str

    def get_deal(self, deal_id: str) -> Deal:
        """Read one deal in canonical form. Raises `NotFound` if it does not exist."""
        ...

    def update_deal(self, deal_id: str, fields: dict[str, FieldValue], *, key: str) -> None:
        """Set canonical fields on the deal. Setting the same values again is harmless."""
        ...

    def add_note(self, deal_id: str, note: NoteSpec) -> str:
        """Attach a note to the deal; returns its id (the existing one for a repeated key)."""
        ...

    def create_task(self, deal_id: str, task: TaskSpec) -> str:
        """Create a task for an owner on the deal; returns its id (idempotent by key)."""
        ...

    def create_billing_document(self, deal_id: str, doc: BillingDocument) -> str:
        """Create the order or invoice for the deal; returns its id (idempotent by key)."""
        ...

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        """Apply one transition's fields, notes and tasks, batching where the CRM allows."""
        ...

    def read_changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        """Deals changed after `cursor` (oldest first) and the cursor to resume from."""
        ...


def write_back_one_by_one(connector: CrmConnector, batch: WriteBack) -> WriteReceipt:
    """`write_back` for connectors with no batch API: one idempotent call per write."""
    if batch.fields:
        connector.update_deal(batch.deal_id, batch.fields, key=batch.key)
    return WriteReceipt(
        deal_id=batch.deal_id,
        note_ids=[connector.add_note(batch.deal_id, n) for n in batch.notes],
        task_ids=[connector.create_task(batch.deal_id, t) for t in batch.tasks],
    )

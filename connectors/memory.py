"""An in-memory CRM for fast workflow tests and the CLI demo without a sandbox.

It keeps the same promises as the real connectors: idempotent writes by key, `NotFound`
for unknown deals, and a change feed that marks Handoff's own writes as echoes.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from connectors.base import (
    BillingDocument,
    ChangePage,
    Deal,
    DealChange,
    FieldValue,
    NoteSpec,
    TaskSpec,
    WriteBack,
    WriteReceipt,
    write_back_one_by_one,
)
from connectors.errors import NotFound
from connectors.lines import MAX_LINES, QuoteLine, QuoteLines


class StoredRecord(BaseModel):
    """A note, task or billing document as the in-memory CRM holds it."""

    id: str
    deal_id: str
    kind: str
    key: str
    data: dict[str, object] = Field(default_factory=dict)


def _text(value: FieldValue) -> str:
    return "" if value is None else str(value)


def _current(deal: Deal, name: str) -> str:
    """A canonical field's value as the CRM holds it now, as text ("" when empty)."""
    if name == "crm_stage":
        return deal.crm_stage
    if name == "owner_email":
        return deal.owner_email
    return deal.fields.get(name, "")


class MemoryConnector:
    """A thread-safe CRM in a dict. `calls` counts every operation by name."""

    crm = "memory"

    def __init__(self, deals: list[Deal] | None = None) -> None:
        self._lock = threading.Lock()
        self._deals: dict[str, Deal] = {d.id: d for d in deals or []}
        self._records: dict[str, StoredRecord] = {}  # by idempotency key
        self._changes: list[DealChange] = []
        self._lines: dict[str, list[QuoteLine]] = {}
        self._ids = itertools.count(1)
        self.calls: Counter[str] = Counter()
        self.managers: dict[str, str] = {}  # owner email → manager email (as `ManagerId`)
        self.teams: dict[str, str] = {}  # owner email → primary team (as HubSpot teams)
        self.manager_error: Exception | None = None  # raised by manager_of (CRM down)

    # -- reads -------------------------------------------------------------------------
    def get_deal(self, deal_id: str) -> Deal:
        with self._lock:
            self.calls["get_deal"] += 1
            return self._deal(deal_id).model_copy(deep=True)

    def get_line_items(self, deal_id: str) -> QuoteLines:
        with self._lock:
            self.calls["get_line_items"] += 1
            self._deal(deal_id)
            lines = [line.model_copy() for line in self._lines.get(deal_id, [])]
            return QuoteLines(deal_id=deal_id, lines=lines[:MAX_LINES])

    def manager_of(self, owner_email: str) -> str | None:
        with self._lock:
            self.calls["manager_of"] += 1
            if self.manager_error is not None:
                raise self.manager_error
            return self.managers.get(owner_email.strip().lower())

    def team_of(self, owner_email: str) -> str | None:
        with self._lock:
            return self.teams.get(owner_email.strip().lower())

    def set_line_items(self, deal_id: str, lines: list[QuoteLine]) -> None:
        """Replace a deal's quote lines, as a rep editing the quote would."""
        with self._lock:
            self._lines[deal_id] = [line.model_copy() for line in lines]

    def records(self, deal_id: str, kind: str | None = None) -> list[StoredRecord]:
        """Notes, tasks and billing documents written to a deal (for checks)."""
        with self._lock:
            return [
                r
                for r in self._records.values()
                if r.deal_id == deal_id and (kind is None or r.kind == kind)
            ]

    def read_changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        with self._lock:
            self.calls["read_changes"] += 1
            start = int(cursor or 0)
            page = self._changes[start : start + limit]
            end = start + len(page)
            return ChangePage(changes=page, cursor=str(end), done=end >= len(self._changes))

    # -- writes ------------------------------------------------------------------------
    def upsert_deal(self, deal: Deal) -> None:
        """Create or replace a deal as a CRM user would (appears in the change feed)."""
        with self._lock:
            self._deals[deal.id] = deal
            self._changes.append(
                DealChange(deal_id=deal.id, changed_at=datetime.now(UTC), fields=deal.fields)
            )

    def update_deal(self, deal_id: str, fields: dict[str, FieldValue], *, key: str) -> None:
        with self._lock:
            self.calls["update_deal"] += 1
            deal = self._deal(deal_id)
            for name, value in fields.items():
                if name == "crm_stage":
                    deal.crm_stage = _text(value)
                else:
                    deal.fields[name] = _text(value)
            deal.updated_at = datetime.now(UTC)
            self._changes.append(
                DealChange(
                    deal_id=deal_id,
                    changed_at=deal.updated_at,
                    fields={k: _text(v) for k, v in fields.items()},
                    by_handoff=True,
                )
            )

    def add_note(self, deal_id: str, note: NoteSpec) -> str:
        return self._create(deal_id, "note", note.key, {"body": note.body})

    def create_task(self, deal_id: str, task: TaskSpec) -> str:
        data = {**task.model_dump(mode="json"), "status": "open"}
        return self._create(deal_id, "task", task.key, data)

    def create_billing_document(self, deal_id: str, doc: BillingDocument) -> str:
        return self._create(deal_id, "invoice", doc.key, doc.model_dump(mode="json"))

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        with self._lock:
            deal = self._deal(batch.deal_id)
            conflicts = {
                name: now
                for name, seen in batch.expected.items()
                if name in batch.fields and (now := _current(deal, name)) != (seen or "")
            }
            completed = []
            for key in batch.complete_tasks:
                task = self._records.get(key)
                if (
                    task is not None
                    and task.kind == "task"
                    and task.data.get("status") != "completed"
                ):
                    task.data["status"] = "completed"
                    completed.append(task.id)
            for key, owner in batch.reassign_tasks.items():
                task = self._records.get(key)
                if (
                    task is not None
                    and task.kind == "task"
                    and task.data.get("status") != "completed"
                ):
                    task.data["owner_email"] = owner
        fields = {k: v for k, v in batch.fields.items() if k not in conflicts}
        receipt = write_back_one_by_one(self, batch.model_copy(update={"fields": fields}))
        return receipt.model_copy(update={"conflicts": conflicts, "completed_task_ids": completed})

    # -- helpers -----------------------------------------------------------------------
    def _deal(self, deal_id: str) -> Deal:
        try:
            return self._deals[deal_id]
        except KeyError:
            raise NotFound(
                "deal not found", crm=self.crm, object_type="deal", record_id=deal_id
            ) from None

    def _create(self, deal_id: str, kind: str, key: str, data: dict[str, object]) -> str:
        with self._lock:
            self.calls[f"create_{kind}"] += 1
            self._deal(deal_id)
            existing = self._records.get(key)
            if existing is not None:
                return existing.id
            record = StoredRecord(
                id=f"{kind}-{next(self._ids)}", deal_id=deal_id, kind=kind, key=key, data=data
            )
            self._records[key] = record
            return record.id

"""CRM write-back: one idempotent activity per step, and parking when the CRM refuses.

Every write carries a key made from the workflow id and the step, so a retried or
replayed write has the effect of one. A permanent refusal parks the handoff on a
`crm_write_failed` exception until someone resolves it; then the write runs again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities
    from activities.notify import Notice, NotifyActivities
    from connectors.base import FieldValue, NoteSpec, TaskSpec, WriteBack, WriteReceipt
    from connectors.mapping import DealField

from workflows.kit.state import Wait
from workflows.options import CRM_WRITE, NOTIFY

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

T = TypeVar("T")

#: (subject, owners, due) of a CRM task.
TaskLine = tuple[str, list[str], datetime | None]


class CrmWriteBack:
    """Writes to the CRM and sends notices on behalf of one handoff."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    async def write(
        self,
        key: str,
        *,
        fields: dict[str, FieldValue] | None = None,
        notes: Sequence[str] = (),
        tasks: Sequence[TaskLine] = (),
    ) -> WriteReceipt:
        """One idempotent CRM write-back: fields, notes and (subject, owners, due) tasks."""
        batch = WriteBack(
            deal_id=self._h.state.deal_id,
            key=key,
            fields=fields or {},
            notes=[NoteSpec(body=body, key=f"{key}:note:{i}") for i, body in enumerate(notes)],
            tasks=[
                TaskSpec(subject=subject, owner_email=o, due_at=due, key=f"{key}:task:{o}")
                for subject, owners, due in tasks
                for o in owners
            ],
        )
        return await self.effect(
            key,
            lambda: workflow.execute_activity_method(CrmActivities.write_back, batch, **CRM_WRITE),
        )

    async def effect(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a CRM activity; on a permanent failure park until resolved, then retry."""
        while True:
            try:
                return await call()
            except ActivityError as err:
                cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
                await self._h.exceptions.park_on_crm_failure(key, cause)

    async def write_transition(self, wait: Wait) -> None:
        """The first write of a wait: stage and status fields, the pending note, a task."""
        st, now = self._h.state, workflow.now()
        due = st.clock.due_at(now) if st.clock else None
        fields: dict[str, FieldValue] = {
            DealField.HANDOFF_STAGE: st.stage,
            DealField.HANDOFF_STATUS: (
                f"waiting on {wait.what}" if not wait.ready() else "in progress"
            ),
            DealField.HANDOFF_OWNER: ", ".join(wait.owner),
            DealField.HANDOFF_DUE_AT: due.isoformat() if due else None,
            **st.pending_fields,
        }
        tasks = [(wait.task, wait.owner, due)] if wait.task and not wait.ready() else []
        await self.write(
            self._h.key(wait.key),
            fields=fields,
            notes=[st.pending_note] if st.pending_note else [],
            tasks=tasks,
        )
        st.pending_note, st.pending_fields = None, {}

    async def notify(self, to: list[str], subject: str, body: str) -> None:
        st = self._h.state
        await workflow.execute_activity_method(
            NotifyActivities.send,
            Notice(
                to=to,
                subject=subject,
                body=body,
                crm=st.crm,
                deal_id=st.deal_id,
                workflow_id=self._h.workflow_id,
            ),
            **NOTIFY,
        )

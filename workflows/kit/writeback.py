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

from workflows.kit.state import OpenTask, Wait
from workflows.options import CRM_WRITE, NOTIFY

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

T = TypeVar("T")

#: CRM fields whose last written value Handoff remembers, to tell echoes from edits.
TRACKED = (DealField.CRM_STAGE,)

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
        group: str | None = None,
        reassign: dict[str, str] | None = None,
    ) -> WriteReceipt:
        """One idempotent CRM write-back: fields, notes and (subject, owners, due) tasks.

        The tasks belong to `group` (a wait's key), so they are completed when it ends;
        tasks of waits that ended since the last write are completed in this one. The
        CRM stage is written only if the CRM still holds what Handoff last saw there.
        """
        st = self._h.state
        fields = fields or {}
        specs = [
            TaskSpec(subject=subject, owner_email=o, due_at=due, key=f"{key}:task:{o}")
            for subject, owners, due in tasks
            for o in owners
        ]
        closing = list(st.tasks_to_complete)
        batch = WriteBack(
            deal_id=st.deal_id,
            key=key,
            fields=fields,
            notes=[NoteSpec(body=body, key=f"{key}:note:{i}") for i, body in enumerate(notes)],
            tasks=specs,
            expected=self._expected(),
            complete_tasks=closing,
            reassign_tasks=reassign or {},
            open_task_ids={k: st.crm_task_ids[k] for k in closing if k in st.crm_task_ids},
            modified_at=st.crm_modified_at,
        )
        receipt = await self.effect(
            key,
            lambda: workflow.execute_activity_method(CrmActivities.write_back, batch, **CRM_WRITE),
        )
        st.tasks_to_complete = [k for k in st.tasks_to_complete if k not in closing]
        for done in closing:
            st.crm_task_ids.pop(done, None)
        for spec in specs:
            st.open_tasks[spec.key] = OpenTask(group=group or key, owner=spec.owner_email)
        st.crm_task_ids.update(zip([s.key for s in specs], receipt.task_ids, strict=False))
        # when the deal last changed, as this write left it (None after a conflict)
        st.crm_modified_at = None if receipt.conflicts else receipt.modified_at
        for name, value in fields.items():
            if name in TRACKED and name not in receipt.conflicts:
                st.crm_written[name] = "" if value is None else str(value)
        if receipt.conflicts:
            await self._conflicts(receipt.conflicts)
        return receipt

    def _expected(self) -> dict[str, str | None]:
        """The CRM-owned fields Handoff tracks, with what it last saw there: compared
        when this write sets them, and checked after every write so that the receipt's
        last-modified time means the CRM still held them (a conditional next write)."""
        deal = self._h.state.deal
        if deal is None:
            return {}
        seen = self._h.state.crm_written.get(DealField.CRM_STAGE, deal.crm_stage)
        return {DealField.CRM_STAGE: seen or None}

    async def _conflicts(self, conflicts: dict[str, str | None]) -> None:
        """The CRM changed a field since Handoff last saw it: keep the CRM's value, record
        it, and tell the deal owner (a conflict is routed, never forced)."""
        h, st = self._h, self._h.state
        said = ", ".join(f"{k} is {v or 'empty'}" for k, v in conflicts.items())
        h.audit.record("writeback", f"not overwritten: the CRM changed it since ({said})")
        if st.deal is not None and DealField.CRM_STAGE in conflicts:
            st.deal.crm_stage = conflicts[DealField.CRM_STAGE] or ""
        await self.notify(
            h.people("deal_owner"),
            "Handoff left your CRM change in place",
            f"Handoff did not overwrite what changed in the CRM: {said}.",
        )

    def close_group(self, group: str) -> None:
        """A wait ended: its open tasks are completed with the next write."""
        st = self._h.state
        for key in [k for k, t in st.open_tasks.items() if t.group == group]:
            del st.open_tasks[key]
            st.tasks_to_complete.append(key)

    def close_all(self) -> None:
        """The handoff ends: every task it opened is completed with the last write."""
        st = self._h.state
        st.tasks_to_complete.extend(st.open_tasks)
        st.open_tasks = {}

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
            group=wait.key,
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

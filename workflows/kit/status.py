"""What a handoff shows: the `status` it answers and the search attributes it keeps.

`describe()` builds the `DealStatus` from the state and the parts (the approval desk
adds its ladder). `publish()` keeps the search attributes (`handoff list`, the inbox)
in step with it. `waiting_for`, `due_at` and `sla_state` say what exactly is awaited,
until when, and how late, with the desk's own clock when it shows one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import names
from workflows.kit.clock import SlaState
from workflows.kit.patches import patched
from workflows.messages import DealStatus
from workflows.names import WaitingOn

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: search attributes are upserted only when a value changed, so a
#: run's commands never depend on how messages and results were batched into tasks.
PUBLISH_CHANGES = "publish-changes"


class StatusView:
    """The status and search attributes of one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h
        self._published: tuple[object, ...] | None = None  # the search attributes last upserted

    def describe(self) -> DealStatus:
        h, st = self._h, self._h.state
        waiting = st.waiting if not st.done else None
        status = DealStatus(
            workflow_id=h.workflow_id,
            workflow_type=workflow.info().workflow_type,
            crm=st.crm,
            deal_id=st.deal_id,
            deal_name=st.deal.name if st.deal else "",
            deal_owner=st.owner_email,
            stage=st.stage,
            waiting_on=waiting.on if waiting else WaitingOn.NOTHING,
            waiting_for=self.waiting_for() if waiting else "",
            owner=waiting.owner if waiting else [],
            since=st.waiting.since if st.waiting else None,
            due_at=self.due_at(),
            sla_state=self.sla_state(),
            evidence=st.evidence,
            exceptions=st.exceptions,
            missing_fields=st.missing_fields,
            accepted=st.accepted,
            history=h.audit.trail(),
            history_dropped=st.history_dropped,
            refusals_total=st.refusals_total,
            policy_version=h.policy_version,
            done=st.done,
            outcome=st.outcome or ("completed" if st.done else ""),
        )
        return h.desk.describe(status) if h.desk else status

    def publish(self) -> None:
        """Keep the search attributes in step with the status (for `handoff list`).

        Only a change is upserted. Besides saving an event per wake-up, this keeps the
        run's commands the same however its messages and results were batched into
        workflow tasks: a signal handled in the same task as an activity result, or in the
        next one, wakes the wait loop once more or once less, and an identical upsert on
        that extra turn would make the two orders replay differently."""
        st = self._h.state
        waiting = st.waiting if not st.done else None
        due = self.due_at()
        on = (waiting.on if waiting else WaitingOn.NOTHING).value
        owner = list(waiting.owner) if waiting else []
        values = (st.deal_id, st.crm, st.stage, on, tuple(owner), due)
        if patched(self._h, PUBLISH_CHANGES):
            if values == self._published:
                return
            self._published = values
        workflow.upsert_search_attributes(
            [
                names.DEAL_ID.value_set(st.deal_id),
                names.CRM.value_set(st.crm),
                names.STAGE.value_set(st.stage),
                names.WAITING_ON.value_set(on),
                names.OWNER.value_set(owner),
                names.DUE_AT.value_set(due) if due else names.DUE_AT.value_unset(),
            ]
        )

    def waiting_for(self) -> str:
        """What exactly is awaited, in words (evidence waits name what is missing)."""
        waiting = self._h.state.waiting
        if waiting is None:
            return ""
        held = self._h.exceptions.holding()
        if held:
            return f"{waiting.what}, held by open {', '.join(held)}"
        if waiting.evidence:
            missing = self._h.evidence.missing(waiting.evidence)
            return f"evidence: {', '.join(missing)}" if missing else "evidence complete"
        return waiting.what

    def due_at(self) -> datetime | None:
        st, desk = self._h.state, self._h.desk
        if desk is not None and (shown := desk.clock_shown()) is not None:
            return shown[0]
        return st.clock.due_at(workflow.now()) if st.clock and not st.done else None

    def sla_state(self) -> SlaState:
        st, desk = self._h.state, self._h.desk
        if desk is not None and (shown := desk.clock_shown()) is not None:
            return shown[1]
        return st.clock.state(workflow.now()) if st.clock and not st.done else "none"

"""`HandoffWorkflow`: the thin base every handoff holds its parts on.

It keeps the state, the policy and the `status` query, and routes every message to the
part that owns it. The behaviour lives in small parts built in `__init__`:

- `self.audit`: the audit trail (`record`, `refuse`, and surfaces' `record_refusal`);
- `self.waits`: waits with an owner, a deadline and one SLA clock loop;
- `self.evidence`: evidence messages and the evidence gate;
- `self.exceptions`: exceptions that pause clocks and are routed by policy;
- `self.contracts`: the deal as the CRM holds it, required fields, team acceptance;
- `self.inbound`: CRM changes (`deal_changed`);
- `self.crm`: idempotent write-back, parking on a CRM that refuses for good;
- `self.desk` (optional): the approval ladder, inside the deal's own workflow;
- `self.inbox`: every message, as a signal or an update, routed to the part that owns
  it (a refusal is recorded, and an update's is raised with its typed code);
- `self.view`: the `status` the query answers and the search attributes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from connectors.base import FieldValue
    from connectors.mapping import DealField

from workflows import metrics, names
from workflows.kit.audit import Audit
from workflows.kit.contracts import Contracts
from workflows.kit.evidence import Evidence
from workflows.kit.exceptions import Exceptions
from workflows.kit.inbound import Inbound
from workflows.kit.inbox import Inbox
from workflows.kit.managers import OwnerManagers
from workflows.kit.people import People
from workflows.kit.policy_move import PolicyMove
from workflows.kit.state import HandoffState
from workflows.kit.status import StatusView
from workflows.kit.waits import ContinueAsNewNow, HandoffOver, Waits
from workflows.kit.writeback import CrmWriteBack
from workflows.messages import DealStatus, Receipt
from workflows.options import MAX_HISTORY_EVENTS
from workflows.policy import Policy
from workflows.policy_people import with_stand_ins
from workflows.policy_rules import CRM_INTEGRATION

if TYPE_CHECKING:
    from workflows.kit.desk import ApprovalDesk

__all__ = ["ContinueAsNewNow", "HandoffOver", "HandoffWorkflow"]


class HandoffWorkflow:
    """Base of handoff workflows (see the module docstring)."""

    state: HandoffState
    desk: ApprovalDesk | None = None
    #: The process's stages in order (for the policy's `from_stage` rules).
    stage_order: Sequence[str] = ()
    #: Whether its terms go through the approval ladder (it builds `self.desk`), so its
    #: approvals appear in inboxes; the registry reads it from here.
    has_ladder: ClassVar[bool] = False

    def __init__(
        self, policy: Policy, policy_version: str, max_history_events: int = MAX_HISTORY_EVENTS
    ) -> None:
        self._policy, self._policy_version = policy, policy_version
        self.max_history_events = max_history_events
        self.changed = False  # a message arrived: waits re-check their condition
        self.audit = Audit(self)
        self.crm = CrmWriteBack(self)
        self.waits = Waits(self)
        self.exceptions = Exceptions(self)
        self.evidence = Evidence(self)
        self.contracts = Contracts(self)
        self.inbound = Inbound(self)
        self.staff = People(self)
        self.policy_move = PolicyMove(self)
        self.managers = OwnerManagers(self)
        self.inbox = Inbox(self)
        self.view = StatusView(self)

    # -- policy --------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        """The policy the handoff started with, or the one ops moved it to."""
        st: HandoffState | None = getattr(self, "state", None)
        return st.moved_policy if st is not None and st.moved_policy else self._policy

    @property
    def policy_version(self) -> str:
        st: HandoffState | None = getattr(self, "state", None)
        moved = st.moved_policy_version if st is not None else None
        return moved or self._policy_version

    # -- identity ----------------------------------------------------------------------
    @property
    def workflow_id(self) -> str:
        return workflow.info().workflow_id

    def key(self, *parts: object) -> str:
        """An idempotency key for one step of this handoff."""
        return ":".join([self.workflow_id, *(str(p) for p in parts)])

    def people(self, role: str | None) -> list[str]:
        """The emails behind a role, each replaced by whoever stands in for them now."""
        owner, manager = self.state.owner_email, self.managers.crm_manager()
        return self.acting(self.policy.people_for(role, owner, manager))

    def acting(self, people: list[str]) -> list[str]:
        """`people` with stand-ins applied (`handoff people reassign` / `away`)."""
        st = self.state
        return with_stand_ins(people, st.stand_ins, workflow.now()) if st.stand_ins else people

    def on_deal_changed(self, fields: dict[str, str]) -> None:
        """Hook: a workflow reacts to CRM field changes (e.g. terms)."""

    # -- messages ----------------------------------------------------------------------
    @workflow.signal(dynamic=True)
    async def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every message as a fire-and-forget signal; refusals go to the audit trail."""
        await self.inbox.signal(name, args)

    @workflow.update(dynamic=True)
    async def on_update(self, name: str, args: Sequence[RawValue]) -> Receipt:
        """Every message as an update: the caller learns at once if it was refused, and
        the refusal is recorded in the audit trail with who sent it and why."""
        return await self.inbox.update(name, args)

    # -- who may act ---------------------------------------------------------------------
    def is_in(self, person: str, roles: Sequence[str]) -> bool:
        """Is `person` one of `roles` (people's roles, `deal_owner`, or `crm`: this CRM)?"""
        crm = f"{self.state.crm}@crm"
        return any(
            person == crm if role == CRM_INTEGRATION else person in self.people(role)
            for role in roles
        )

    def reached(self, stage: str) -> bool:
        """Has the handoff reached `stage`? (True for a stage not in this process.)"""
        order = list(self.stage_order)
        current = self.state.stage
        if stage not in order or current not in order:
            return True
        return order.index(current) >= order.index(stage)

    # -- status ------------------------------------------------------------------------
    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> DealStatus:
        """Where the handoff stands: what it waits on, from whom, since and until when."""
        return self.view.describe()

    def describe(self) -> DealStatus:
        """The status (`workflows.kit.status`)."""
        return self.view.describe()

    def publish(self) -> None:
        """Keep the search attributes in step with the status (`workflows.kit.status`)."""
        self.view.publish()

    # -- stage transitions -------------------------------------------------------------
    def advance(self, stage: str, note: str, fields: dict[str, FieldValue] | None = None) -> None:
        """Move to `stage`; the next wait writes `note` and `fields` with the transition."""
        previous, now = self.state.stage, workflow.now()
        metrics.observe_stage(previous, (now - self.state.stage_since).total_seconds())
        self.state.stage, self.state.stage_since = stage, now
        pending = self.state.pending_note
        self.state.pending_note = f"{pending}\n\n{note}" if pending else note
        self.state.pending_fields = {**self.state.pending_fields, **(fields or {})}
        self.audit.record("stage", f"{previous} → {stage}")

    async def finish(self, note: str, fields: dict[str, FieldValue] | None = None) -> None:
        """Write the final transition and mark the handoff done."""
        st = self.state
        st.done = True
        await self.crm.write(
            self.key("done"),
            fields={
                DealField.HANDOFF_STAGE: st.stage,
                DealField.HANDOFF_STATUS: "complete",
                DealField.HANDOFF_OWNER: "",
                DealField.HANDOFF_DUE_AT: None,
                **st.pending_fields,
                **(fields or {}),
            },
            notes=[n for n in (st.pending_note, note) if n],
        )
        st.pending_note, st.pending_fields = None, {}
        st.clock = None
        self.publish()

    async def run_to_end(
        self, process: Callable[[], Awaitable[None]], next_input: Callable[[], Any]
    ) -> DealStatus:
        """Run `process`; continue as new when the history grows large, close the handoff
        when the deal is lost in the CRM; answer the final status once handlers finish."""
        try:
            await process()
        except ContinueAsNewNow:
            await self.drain_and_continue_as_new(next_input)
        except HandoffOver:  # lost in the CRM: nothing more to do or write
            await self.end_outside()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.describe()

    async def end_outside(self) -> None:
        """The deal was lost in the CRM: stop every clock, complete the tasks Handoff
        opened, leave a note, and write no field over the CRM."""
        st = self.state
        st.done, st.clock = True, None
        self.crm.close_all()
        stage = st.deal.crm_stage if st.deal else "lost"
        await self.crm.write(
            self.key("ended", st.outcome), notes=[f"Handoff ended: the deal is {stage} in the CRM."]
        )
        self.publish()

    async def drain_and_continue_as_new(self, make_input: Callable[[], Any]) -> NoReturn:
        """Let running handlers finish, then continue as new with the current state."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(make_input())

"""The CRM is the system of record both ways: what a rep changes there drives the handoff.

A `deal_changed` message brings fields the CRM changed. Each field is applied only if
it is newer than the one already applied (the CRM's own timestamps), so late, stale
deliveries never make a gate pass. Then:

- the stage moved to a lost stage (policy `lost_crm_stages`) → the handoff ends as lost:
  its timers stop, its open tasks are completed, and nothing is written over the CRM;
- the stage moved by hand to a stage Handoff sets later → recorded, and unless the
  evidence for it is in, a `stage_jump` exception (when the policy has that kind);
- the owner changed → the wait, its open tasks and its notices move to the new owner;
- amount, discount or cost changed → new terms, as `update_terms` (only the tiers the
  new terms affect are asked again), in the name of the CRM user.

Handoff's own writes coming back (webhook echoes) change nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from connectors.mapping import DealField

from workflows.kit.patches import patched
from workflows.kit.quote_lines import with_quote_fields
from workflows.kit.state import DeskState
from workflows.messages import DealChangedIn
from workflows.names import Stage

if TYPE_CHECKING:
    from connectors.base import Deal
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: CRM changes act on the workflow (runs opened before ignore them).
CRM_TRUTH = "crm-truth"
#: `workflow.patched` id: terms fields act only when their value moved from what the CRM
#: last held (the Salesforce feed sends every mapped field with each change; before it,
#: a rep's unrelated edit put back the CRM's terms over those set with `update_terms`).
CRM_MOVED_ONLY = "crm-moved-only"
STAGE_JUMP = "stage_jump"
TERMS_FIELDS: dict[str, str] = {
    DealField.AMOUNT: "amount",
    DealField.DISCOUNT_PERCENT: "discount_percent",
}
#: The fields that act on the handoff (others only feed contracts and evidence).
ACTING = {DealField.CRM_STAGE, DealField.OWNER_EMAIL, DealField.COST, *TERMS_FIELDS}


class CrmTruth:
    """Acts on CRM changes for one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def newer(self, msg: DealChangedIn) -> dict[str, str]:
        """The fields of `msg` newer than those already applied (all, without a time)."""
        st, at = self._h.state, msg.occurred_at
        if at is None:
            return dict(msg.fields)
        fresh = {k: v for k, v in msg.fields.items() if at >= st.field_times.get(k, at)}
        for name in fresh:
            st.field_times[name] = at
        return fresh

    def moved(self, fields: dict[str, str]) -> dict[str, str]:
        """`fields` without the terms fields (amount, discount, cost) that still hold
        what the CRM last held, as far as this handoff knows it (the record it read and
        every change since); those that moved are remembered as the CRM's now. Stage and
        owner are compared where they act. Runs opened before `CRM_MOVED_ONLY` keep all."""
        deal = self._h.state.deal
        if deal is None or not patched(self._h, CRM_MOVED_ONLY):
            return fields
        terms = {*TERMS_FIELDS, DealField.COST}
        held = {k for k, v in fields.items() if k in terms and _holds(deal, k, v)}
        for name in terms & fields.keys() - held:
            _remember(deal, name, fields[name])
        return {k: v for k, v in fields.items() if k not in held}

    async def act(self, fields: dict[str, str], by: str) -> None:
        """Stage, owner and terms changes (see the module docstring)."""
        st = self._h.state
        quote = isinstance(st, DeskState) and st.quote  # every change may move a line
        if not (set(fields) & ACTING or quote) or not patched(self._h, CRM_TRUTH):
            return
        stage = fields.get(DealField.CRM_STAGE)
        if stage is not None and stage != st.crm_written.get(DealField.CRM_STAGE):
            await self._stage(stage, by)
        owner = fields.get(DealField.OWNER_EMAIL, "").strip().lower()
        if owner and st.deal is not None and owner != st.deal.owner_email:
            await self._owner(owner, by)
        if not st.outcome and (quote or any(k in fields for k in (*TERMS_FIELDS, DealField.COST))):
            await self._terms(fields, by)

    async def _stage(self, stage: str, by: str) -> None:
        h, st = self._h, self._h.state
        st.crm_modified_at = None  # moved by hand: the next write reads and compares
        if st.deal is not None:
            st.deal.crm_stage = stage
        if stage in h.policy.lost_crm_stages:
            st.outcome = "lost"
            h.audit.record("stage", f"deal set to {stage} in the CRM: the handoff ends as lost", by)
            return
        set_by_handoff = [s for s, v in h.policy.crm_stages.items() if v == stage]
        if not set_by_handoff or h.reached(set_by_handoff[0]):
            h.audit.record("info", f"CRM stage set to {stage} by hand", by)
            return
        jump = set_by_handoff[0]
        missing = self._missing_up_to(jump)
        if not missing:
            h.audit.record("info", f"CRM stage set to {stage} by hand; its evidence is in", by)
        elif STAGE_JUMP in h.policy.exceptions and not h.exceptions.is_open(STAGE_JUMP):
            note = f"CRM stage set to {stage} by {by} before {', '.join(missing)}"
            await h.exceptions.raise_(STAGE_JUMP, by, note)
        else:
            h.audit.record("info", f"CRM stage set to {stage} by hand, before {missing}", by)

    def _missing_up_to(self, stage: str) -> list[str]:
        """Evidence the process requires up to and including `stage`, not yet in."""
        h = self._h
        order = list(h.stage_order)
        kinds = [
            k
            for s in order[: order.index(stage) + 1]
            if s in h.policy.stages
            for k in h.policy.stage(Stage(s)).evidence
        ]
        return h.evidence.missing(kinds)

    async def _owner(self, new: str, by: str) -> None:
        h, st = self._h, self._h.state
        assert st.deal is not None
        old, st.deal.owner_email = st.deal.owner_email, new
        h.audit.record("info", f"deal owner changed in the CRM from {old or '-'} to {new}", by)
        if st.waiting is not None and old in st.waiting.owner:
            st.waiting.owner = [new if p == old else p for p in st.waiting.owner]
            h.publish()
        moving = {k: new for k, t in st.open_tasks.items() if t.owner == old}
        for key in moving:
            st.open_tasks[key].owner = new
        if moving:
            await h.crm.write(h.key("owner", len(st.history)), reassign=moving)
        await h.managers.refresh()  # the new owner's manager, per the CRM
        if st.waiting is not None and new in st.waiting.owner:
            what = h.view.waiting_for()
            await h.crm.notify(
                [new], f"You own {st.deal.name or st.deal_id} now", f"It waits on {what}."
            )

    async def _terms(self, fields: dict[str, str], by: str) -> None:
        h, desk = self._h, self._h.desk
        if desk is None:
            return
        changes: dict[str, float | None] = {}
        for name, attr in TERMS_FIELDS.items():
            if name in fields and (value := crm_number(fields[name])) is not None:
                changes[attr] = value
        if DealField.COST in fields:
            changes["cost"] = crm_number(fields[DealField.COST])
        quote = isinstance(st := self._h.state, DeskState) and st.quote
        if quote and "discount_percent" in changes:  # on top of the lines' discounts
            changes["deal_discount_percent"] = changes.pop("discount_percent")
        new = desk.terms.with_changes(changes)
        if quote:  # the lines and quote fields as the CRM holds them now
            new = await desk.quote.read(with_quote_fields(new, fields))
        if new == desk.terms.current():  # Handoff's own view already, or an echo
            return
        if (fixed := desk.terms.fixed()) is not None:
            h.audit.record("info", f"CRM terms changed but not applied: {fixed}", by)
            await h.crm.notify(h.people("deal_owner"), "CRM terms changed after signature", fixed)
            return
        await desk.terms.apply(new, by)


def crm_number(text: str | None) -> float | None:
    """A CRM field's number (amount, discount, cost), or None when empty or not one."""
    try:
        return float(text) if text and text.strip() else None
    except ValueError:
        return None


def _holds(deal: Deal, name: str, value: str) -> bool:
    """Whether the CRM as last seen (`deal`) already holds `value` for terms field `name`."""
    if name in TERMS_FIELDS:
        held: float | None = getattr(deal, TERMS_FIELDS[name])
        return crm_number(value) == held
    return deal.fields.get(name) == value


def _remember(deal: Deal, name: str, value: str) -> None:
    if name in TERMS_FIELDS:
        setattr(deal, TERMS_FIELDS[name], crm_number(value))
    else:
        deal.fields[name] = value

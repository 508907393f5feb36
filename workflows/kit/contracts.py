"""Contracts: the next team gets what it needs, and takes the handoff explicitly.

`require_fields` waits until the deal, read fresh from the CRM, has every required
field; when some are missing, the owner gets a CRM task naming them and the fields are
re-checked on every CRM change and on a recheck timer (which re-reads the record). A
change that would fill a missing field is checked against the record first: a late
delivery (a retried webhook, a change-feed page dispatched again) can carry a value the
CRM no longer holds, and a contract never passes on one. `accept_handoff` messages from
the receiving team close the handoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, DealRef, OpenedDeal
    from connectors.base import Deal
    from connectors.mapping import DealField

from workflows.kit.dispatch import Handler, No
from workflows.kit.patches import patched
from workflows.kit.state import Wait
from workflows.messages import AcceptIn
from workflows.names import Msg, Refusal, WaitingOn
from workflows.options import CRM_READ
from workflows.policy import Clock
from workflows.records import AcceptRecord

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

ContractName = Literal["sales_to_ops", "ops_to_billing"]
#: `workflow.patched` id: a CRM change that would fill a missing contract field is
#: checked against the record before the contract can pass (runs opened before trust it).
CONTRACT_REREAD = "contract-reread"


def words(key: str) -> str:
    """A contract or step key as a person reads it: `sales_to_ops` → `sales → ops`."""
    return key.split(":")[0].replace("_to_", " → ").replace("_", " ")


class Contracts:
    """The deal's required fields and team acceptance (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h
        self._required: list[str] = []

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.ACCEPT_HANDOFF, Handler(AcceptIn, self._check_accept, self._apply_accept))]

    # -- the deal as the CRM holds it ------------------------------------------------------
    async def _read(self) -> Deal:
        st = self._h.state
        deal: Deal = await self._h.crm.effect(  # a refused read parks the handoff like a write
            f"read {st.deal_id}",
            lambda: workflow.execute_activity_method(
                CrmActivities.get_deal, DealRef(deal_id=st.deal_id), **CRM_READ
            ),
        )
        return deal

    async def refresh_deal(self) -> Deal:
        """Re-read the deal from the CRM (fields change outside Handoff)."""
        st = self._h.state
        deal = await self._read()
        st.deal = deal
        st.crm_written.setdefault(DealField.CRM_STAGE, deal.crm_stage)  # what Handoff saw
        await self._h.managers.refresh()  # a new owner: who manages them, per the CRM
        return deal

    async def open(self) -> OpenedDeal:
        """The opening read (`workflows.kit.patches.OPEN_AT_ONCE`): the deal, its quote
        lines and its owner's manager in one activity; the caller applies the lines."""
        h, st = self._h, self._h.state
        opened: OpenedDeal = await h.crm.effect(  # a refused read parks, as `_read` does
            f"read {st.deal_id}",
            lambda: workflow.execute_activity_method(
                CrmActivities.open_deal, DealRef(deal_id=st.deal_id), **CRM_READ
            ),
        )
        deal = st.deal = opened.deal
        st.crm_written.setdefault(DealField.CRM_STAGE, deal.crm_stage)  # what Handoff saw
        if deal.owner_email and (opened.manager or opened.manager_problem):
            before = h.managers.before()
            h.managers.learned(deal.owner_email, opened.manager, opened.manager_problem, before)
        return opened

    def missing_fields(self, required: Sequence[str]) -> list[str]:
        deal = self._h.state.deal
        fields = deal.fields if deal else {}
        return [f for f in required if not fields.get(f, "").strip()]

    async def require_fields(
        self, key: str, required: Sequence[str], clock: Clock, recheck_every: timedelta
    ) -> None:
        """Wait until the deal has every field in `required` (see the module docstring)."""
        h, st = self._h, self._h.state
        await self.refresh_deal()
        st.missing_fields, self._required = self.missing_fields(required), list(required)

        async def recheck() -> None:
            await self.refresh_deal()
            st.missing_fields = self.missing_fields(required)

        if st.missing_fields:
            h.audit.record("task", f"{words(key)} is missing {', '.join(st.missing_fields)}")
            await h.waits.wait_for(
                Wait(
                    key=f"{key}:fields",
                    on=WaitingOn.HANDOFF_FIELDS,
                    what=f"fields for {words(key)}: {', '.join(st.missing_fields)}",
                    owner=h.people("deal_owner"),
                    ready=lambda: not st.missing_fields,
                    clock=clock,
                    task=f"Fill in for {words(key)}: " + ", ".join(st.missing_fields),
                    recheck_every=recheck_every,
                    recheck=recheck,
                )
            )
        self._required = []

    async def check(self, contract: ContractName) -> None:
        """The handoff contract: the next team's required fields."""
        rule = self._h.policy.contracts[contract]
        await self.require_fields(contract, rule.fields, rule, rule.recheck_every)

    async def fields_changed(self) -> None:
        """A CRM change arrived: re-check the fields a `require_fields` wait needs. If the
        change would fill one that is missing, the required fields are read from the
        record first (only those: the other fields of the change act as delivered)."""
        st, required = self._h.state, list(self._required)
        if not required:
            return
        missing = self.missing_fields(required)
        filled = set(st.missing_fields) - set(missing)
        if filled and st.deal is not None and patched(self._h, CONTRACT_REREAD):
            fresh = await self._read()
            st.deal.fields.update({f: fresh.fields.get(f, "") for f in required})
            missing = self.missing_fields(required)
            if stale := sorted(filled & set(missing)):
                self._h.audit.record(
                    "info", f"{', '.join(stale)} delivered, but empty in the CRM: still missing"
                )
        st.missing_fields = missing

    # -- acceptance by the receiving team ------------------------------------------------
    async def acceptance(self, contract: ContractName) -> None:
        """Wait for the contract's receiving team (if any) to accept the handoff."""
        h, rule = self._h, self._h.policy.contracts[contract]
        if not rule.accept_by:
            return
        team = rule.accept_by
        await h.waits.wait_for(
            Wait(
                key=f"{contract}:accept",
                on=WaitingOn.ACCEPTANCE,
                what=f"{team} to accept the handoff",
                owner=h.people(team),
                ready=lambda: self.accepted_by(team),
                clock=rule,
                team=team,
                task=f"Accept the {words(contract)} handoff",
            )
        )

    def accepted_by(self, team: str) -> bool:
        return any(a.team == team for a in self._h.state.accepted)

    def _check_accept(self, msg: AcceptIn) -> No | None:
        waiting = self._h.state.waiting
        if waiting is None or waiting.team is None:
            return No(Refusal.NOT_PENDING, "no handoff is waiting for acceptance")
        if msg.team != waiting.team:
            return No(
                Refusal.NOT_PENDING,
                f"this handoff waits for team {waiting.team!r}, not {msg.team!r}",
            )
        team = self._h.people(waiting.team)
        if msg.by not in team:
            return No(Refusal.NOT_AUTHORISED, f"{msg.by} is not in team {waiting.team!r} ({team})")
        if self.accepted_by(msg.team):  # a repeated delivery has the effect of one
            return No(Refusal.DUPLICATE, f"{msg.team} has already accepted this handoff")
        return None

    async def _apply_accept(self, msg: AcceptIn) -> str:
        self._h.state.accepted.append(AcceptRecord(team=msg.team, by=msg.by, at=workflow.now()))
        self._h.audit.record("acceptance", f"{msg.team} accepted the handoff", by=msg.by)
        return f"{msg.team} accepted"

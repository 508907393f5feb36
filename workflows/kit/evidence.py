"""Evidence: typed proof that moves a stage, recorded with who gave it, from where, when.

`add_evidence` messages are checked against the policy's evidence kinds; `gate()` is
the wait every evidence-driven stage is made of.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows.kit.dispatch import Handler, No
from workflows.kit.state import Wait
from workflows.messages import EvidenceIn
from workflows.names import Msg, Refusal, WaitingOn
from workflows.policy import Clock, StagePolicy
from workflows.records import EvidenceRecord

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow


class Evidence:
    """The evidence of one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.ADD_EVIDENCE, Handler(EvidenceIn, self._check, self._apply))]

    def _check(self, msg: EvidenceIn) -> No | None:
        policy = self._h.policy
        if msg.kind not in policy.evidence:
            return No(
                Refusal.INVALID,
                f"unknown evidence kind {msg.kind!r}; allowed: {policy.evidence_kinds()}",
            )
        return self.may_record(msg.kind, msg.by)

    def may_record(self, kind: str, by: str) -> No | None:
        """The policy's rule for `kind`: who may record it, and from which stage on."""
        h, rule = self._h, self._h.policy.evidence[kind]
        if rule.recorded_by is not None and not h.is_in(by, rule.recorded_by):
            return No(
                Refusal.NOT_AUTHORISED,
                f"{by} may not record {kind} (evidence.{kind}.recorded_by: "
                f"{', '.join(rule.recorded_by) or 'nobody'})",
            )
        if rule.from_stage is not None and not h.reached(rule.from_stage):
            return No(
                Refusal.NOT_PENDING,
                f"{kind} counts from the {rule.from_stage} stage on, and the deal is at "
                f"{h.state.stage} (evidence.{kind}.from_stage)",
            )
        return None

    def add_from_crm(self, kind: str, ref: str | None) -> None:
        """Evidence from a ticked CRM field, if the policy lets the CRM record it."""
        by = f"{self._h.state.crm}@crm"
        if (no := self.may_record(kind, by)) is not None:
            self._h.audit.refuse("deal_changed", no, by)
            return
        self.add(kind, by, ref, "from a CRM field")

    async def _apply(self, msg: EvidenceIn) -> str:
        return self.add(msg.kind, msg.by, msg.ref, msg.note)

    def add(self, kind: str, by: str, ref: str | None, note: str | None) -> str:
        st = self._h.state
        if st.has_evidence(kind):
            return f"{kind} was already recorded"
        st.evidence.append(
            EvidenceRecord(kind=kind, by=by, at=workflow.now(), stage=st.stage, ref=ref, note=note)
        )
        self._h.audit.record("evidence", f"{kind}" + (f" ({ref})" if ref else ""), by=by)
        return f"{kind} recorded"

    def missing(self, kinds: Sequence[str]) -> list[str]:
        return [k for k in kinds if not self._h.state.has_evidence(k)]

    def summary(self, kinds: Sequence[str]) -> str:
        lines = [
            f"- {e.kind} by {e.by}" + (f" ({e.ref})" if e.ref else "") + f", {e.at:%Y-%m-%d}"
            for e in self._h.state.evidence
            if e.kind in kinds
        ]
        return "\n".join(lines)

    async def gate(
        self,
        key: str,
        rule: StagePolicy,
        *,
        what: str,
        task: str,
        clock: Clock | None = None,
        starts_at: datetime | None = None,
        or_until: Callable[[], bool] | None = None,
    ) -> None:
        """Wait until every evidence kind `rule` requires has arrived (or `or_until()`),
        owned by the rule's owner role, on the rule's SLA clock unless `clock` is given."""
        await self._h.waits.wait_for(
            Wait(
                key=key,
                on=WaitingOn.EVIDENCE,
                what=what,
                evidence=rule.evidence,
                owner=self._h.people(rule.owner),
                ready=lambda: (
                    not self.missing(rule.evidence) or (or_until is not None and or_until())
                ),
                clock=clock or rule,
                starts_at=starts_at,
                task=task,
            )
        )

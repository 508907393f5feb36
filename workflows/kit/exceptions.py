"""Exceptions: scope changes, credit holds, legal review, cancellations... routed and timed.

Raising one pauses the stage clock, routes it to its owner role with its own SLA (a
reminder, then escalation) and writes it to the CRM. Resolving the last open one
resumes the clock. A CRM that refuses a write for good parks the handoff on a
`crm_write_failed` exception until someone resolves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

from workflows.kit.clock import ClockState
from workflows.kit.dispatch import Handler, No
from workflows.kit.patches import patched
from workflows.kit.state import WaitState
from workflows.kit.waits import ESCALATION_LADDER, HandoffOver
from workflows.messages import ExceptionIn
from workflows.names import Msg, Refusal, WaitingOn
from workflows.records import ExceptionRecord

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: The exception kind a workflow parks on when the CRM refuses a write for good.
CRM_WRITE_FAILED = "crm_write_failed"


class Exceptions:
    """The exceptions of one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def handlers(self) -> list[tuple[str, Handler]]:
        return [
            (Msg.RAISE_EXCEPTION, Handler(ExceptionIn, self._check_raise, self._apply_raise)),
            (Msg.RESOLVE_EXCEPTION, Handler(ExceptionIn, self._check_resolve, self._apply_resolve)),
        ]

    def is_open(self, kind: str) -> bool:
        return any(e.kind == kind for e in self._h.state.open_exceptions())

    # -- raise ---------------------------------------------------------------------------
    def _check_raise(self, msg: ExceptionIn) -> No | None:
        kinds = self._h.policy.exceptions
        if msg.kind not in kinds:
            return No(
                Refusal.INVALID, f"unknown exception kind {msg.kind!r}; allowed: {sorted(kinds)}"
            )
        if self.is_open(msg.kind):
            return No(Refusal.DUPLICATE, f"a {msg.kind} exception is already open")
        allowed = kinds[msg.kind].raised_by
        if allowed is not None and not self._h.is_in(msg.by, allowed):
            who = ", ".join(allowed) if allowed else "nobody: Handoff raises it itself"
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.by} may not raise {msg.kind} (exceptions.{msg.kind}.raised_by: {who})",
            )
        return None

    def holding(self) -> list[str]:
        """Open exceptions whose policy says they hold the stage (`blocks: true`)."""
        rules = self._h.policy.exceptions
        return [
            e.kind
            for e in self._h.state.open_exceptions()
            if e.kind in rules and rules[e.kind].blocks
        ]

    async def _apply_raise(self, msg: ExceptionIn) -> str:
        return await self.raise_(msg.kind, msg.by, msg.note)

    async def raise_(self, kind: str, by: str, note: str, *, via_crm: bool = True) -> str:
        """Open an exception: pause the clock, route it to its owner, start its own SLA."""
        h, st = self._h, self._h.state
        rule = h.policy.exceptions[kind]
        now = workflow.now()
        owners = h.people(rule.owner)
        exc = ExceptionRecord(
            kind=kind,
            raised_by=by,
            note=note,
            raised_at=now,
            stage=st.stage,
            owner=owners,
            clock=ClockState.start(
                f"exception:{kind}",
                sla=rule.sla,
                now=now,
                remind_before=rule.remind_before,
                escalate_to=h.people(rule.escalate_to),
                ladder=[h.people(r) for r in rule.then_escalate_to],
                repeat=patched(h, ESCALATION_LADDER),
            ),
        )
        h.waits.count_hours(exc.clock, owners)  # its team's business hours, if any
        exc.due_at = exc.clock.due_at(now) if exc.clock else None
        n = len(st.exceptions)
        st.exceptions.append(exc)
        h.audit.record("exception", f"{kind} raised: {note}", by=by)
        h.waits.sync_pause()
        subject = f"Resolve {kind.replace('_', ' ')}: {note}"
        if via_crm:
            await h.crm.write(
                h.key("exception", n, kind),
                notes=[f"Exception {kind} raised by {by}: {note}"],
                tasks=[(subject, owners, exc.due_at)],
                group=f"exception:{kind}",
            )
        else:
            await h.crm.notify(owners, subject, note)
        return f"{kind} raised; routed to {', '.join(owners)}"

    # -- resolve -------------------------------------------------------------------------
    def _check_resolve(self, msg: ExceptionIn) -> No | None:
        st = self._h.state
        exc = next((e for e in st.open_exceptions() if e.kind == msg.kind), None)
        if exc is None:
            return No(Refusal.NOT_PENDING, f"no open {msg.kind!r} exception to resolve")
        rule = self._h.policy.exceptions.get(msg.kind)
        if rule is not None and rule.resolved_by is not None:
            if not self._h.is_in(msg.by, rule.resolved_by):
                return No(
                    Refusal.NOT_AUTHORISED,
                    f"{msg.by} may not resolve {msg.kind} (exceptions.{msg.kind}.resolved_by: "
                    f"{', '.join(rule.resolved_by)})",
                )
            return None
        allowed = set(exc.owner) | set(exc.clock.escalate_to if exc.clock else [])
        allowed.add(st.owner_email)  # older policy files: the owner could resolve too
        if msg.by not in allowed:
            return No(
                Refusal.NOT_AUTHORISED,
                f"{msg.by} may not resolve {msg.kind}; owners: {', '.join(sorted(allowed))}",
            )
        return None

    async def _apply_resolve(self, msg: ExceptionIn) -> str:
        h, st = self._h, self._h.state
        exc = next(e for e in st.open_exceptions() if e.kind == msg.kind)
        exc.resolved_at, exc.resolved_by, exc.resolution = workflow.now(), msg.by, msg.note
        h.audit.record("exception", f"{msg.kind} resolved: {msg.note}", by=msg.by)
        h.waits.sync_pause()
        h.crm.close_group(f"exception:{msg.kind}")
        n = st.exceptions.index(exc)
        if exc.kind != CRM_WRITE_FAILED:
            await h.crm.write(
                h.key("exception", n, exc.kind, "resolved"),
                notes=[f"Exception {exc.kind} resolved by {msg.by}: {msg.note}"],
            )
        return f"{msg.kind} resolved"

    # -- parking on a CRM that refuses -----------------------------------------------------
    async def park_on_crm_failure(self, key: str, cause: str) -> None:
        """Park on `crm_write_failed` until someone resolves it; status says so meanwhile."""
        h, st = self._h, self._h.state
        if not self.is_open(CRM_WRITE_FAILED):
            await self.raise_(
                CRM_WRITE_FAILED, "handoff", f"write {key} refused: {cause}", via_crm=False
            )
        resume = st.waiting
        st.waiting = WaitState(
            key=f"parked:{key}",
            on=WaitingOn.EXCEPTION,
            owner=h.people(h.policy.exceptions[CRM_WRITE_FAILED].owner),
            since=workflow.now(),
            what=f"{CRM_WRITE_FAILED} to be resolved (the CRM refused a write)",
            written=True,
        )
        h.publish()
        await workflow.wait_condition(
            lambda: not self.is_open(CRM_WRITE_FAILED) or bool(st.outcome)
        )
        st.waiting = resume
        h.publish()
        if st.outcome and self.is_open(CRM_WRITE_FAILED):  # lost meanwhile: stop retrying
            raise HandoffOver

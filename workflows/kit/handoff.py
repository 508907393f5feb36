"""`HandoffWorkflow`: the plumbing every handoff shares, so a workflow reads as its process.

A subclass sets `self.state` and `self.policy` in `run()`, then composes:

- `await self.wait_for(Wait(...))`: a wait with an owner, a deadline, reminders,
  escalation and a transition write-back (the SLA clock and the evidence gate);
- `self.advance(stage, note)`: move on; the next wait writes the transition;
- `await self.check_contract(name)`: the handoff contract, with a task when fields miss;
- `await self.write(...)`, `await self.notify(...)`: the write-back helpers;
- exceptions (`raise_exception`/`resolve_exception`) pause clocks and are routed by policy;
- evidence, acceptance and CRM-change messages are handled here for every workflow.

Messages are dynamic signal and update handlers driven by `handlers()`, so a refused
signal is recorded in `status.history` and a refused update is rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, DealRef
    from activities.notify import Notice, NotifyActivities
    from connectors.base import Deal, FieldValue, NoteSpec, TaskSpec, WriteBack, WriteReceipt

from workflows import metrics, names
from workflows.kit.clock import ClockEvent, ClockState, SlaState
from workflows.kit.dispatch import Handler, parse, raw_claimed_by
from workflows.kit.state import HandoffState, Wait, WaitState
from workflows.messages import (
    AcceptIn,
    AcceptRecord,
    DealChangedIn,
    DealStatus,
    EvidenceIn,
    EvidenceRecord,
    ExceptionIn,
    ExceptionRecord,
    HistoryEntry,
    HistoryKind,
    Receipt,
)
from workflows.names import Msg, WaitingOn
from workflows.options import CRM_READ, CRM_WRITE, MAX_HISTORY_ENTRIES, MAX_HISTORY_EVENTS, NOTIFY
from workflows.policy import Clock, Policy, StagePolicy

T = TypeVar("T")

#: The exception kind a workflow parks on when the CRM refuses a write for good.
CRM_WRITE_FAILED = "crm_write_failed"


class ContinueAsNewNow(Exception):
    """Raised inside a wait when the run's history is large; `run()` continues as new."""


class HandoffWorkflow:
    """Base class of handoff workflows (see the module docstring)."""

    state: HandoffState
    policy: Policy
    policy_version: str
    max_history_events: int = MAX_HISTORY_EVENTS

    def __init__(self) -> None:
        self._changed = False
        self._required: list[str] = []

    # -- identity ----------------------------------------------------------------------
    @property
    def workflow_id(self) -> str:
        return workflow.info().workflow_id

    def key(self, *parts: object) -> str:
        """An idempotency key for one step of this handoff."""
        return ":".join([self.workflow_id, *(str(p) for p in parts)])

    def people(self, role: str | None) -> list[str]:
        return self.policy.people_for(role, self.state.owner_email)

    # -- audit trail -------------------------------------------------------------------
    def record(
        self, kind: HistoryKind, detail: str, by: str | None = None, accepted: bool = True
    ) -> None:
        """Append to `status.history`, keeping the newest entries."""
        st = self.state
        st.history.append(
            HistoryEntry(at=workflow.now(), kind=kind, detail=detail, by=by, accepted=accepted)
        )
        if len(st.history) > MAX_HISTORY_ENTRIES:
            st.history_dropped += len(st.history) - MAX_HISTORY_ENTRIES
            del st.history[: len(st.history) - MAX_HISTORY_ENTRIES]

    def refuse(self, message: str, reason: str, by: str | None) -> None:
        self.record("refused", f"{message} refused: {reason}", by=by, accepted=False)
        metrics.count_refusal(message)
        workflow.logger.info("refused %s: %s", message, reason)

    # -- messages ----------------------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        """Message name → handler. Subclasses add theirs to these."""
        return {
            Msg.ADD_EVIDENCE: Handler(EvidenceIn, self._check_evidence, self._apply_evidence),
            Msg.RAISE_EXCEPTION: Handler(ExceptionIn, self._check_raise, self._apply_raise),
            Msg.RESOLVE_EXCEPTION: Handler(ExceptionIn, self._check_resolve, self._apply_resolve),
            Msg.ACCEPT_HANDOFF: Handler(AcceptIn, self._check_accept, self._apply_accept),
            Msg.DEAL_CHANGED: Handler(DealChangedIn, self._check_changed, self._apply_changed),
        }

    def _resolve(self, name: str, args: Sequence[RawValue]) -> tuple[Handler | None, Any, str]:
        handler = self.handlers().get(name)
        if handler is None:
            return None, None, f"unknown message; accepted: {', '.join(sorted(self.handlers()))}"
        msg = parse(handler.model, args)
        if isinstance(msg, str):
            return handler, None, msg
        if self.state.done:
            return handler, msg, "this handoff is complete"
        return handler, msg, handler.check(msg) or ""

    @workflow.signal(dynamic=True)
    async def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every message as a fire-and-forget signal; refusals go to the history."""
        handler, msg, reason = self._resolve(name, args)
        if handler is None or reason:
            self.refuse(name, reason, raw_claimed_by(args))
            self._changed = True  # wake the wait loop: its history grew
            return
        await handler.apply(msg)
        self._changed = True

    @workflow.update(dynamic=True)
    async def on_update(self, name: str, args: Sequence[RawValue]) -> Receipt:
        """Every message as a validated update: the caller learns at once if refused."""
        handler, msg, _ = self._resolve(name, args)
        assert handler is not None  # the validator refused unknown names
        detail = await handler.apply(msg)
        self._changed = True
        return Receipt(
            detail=detail,
            stage=self.state.stage,
            waiting_on=self.state.waiting.on if self.state.waiting else WaitingOn.NOTHING,
        )

    @on_update.validator
    def validate_update(self, name: str, args: Sequence[RawValue]) -> None:
        handler, _, reason = self._resolve(name, args)
        if handler is None or reason:
            metrics.count_refusal(name)
            raise ApplicationError(f"{name} refused: {reason}", type="Refused")

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> DealStatus:
        """Where the handoff stands: what it waits on, from whom, since and until when."""
        return self.describe()

    def describe(self) -> DealStatus:
        """The status; subclasses extend it with their own fields."""
        st = self.state
        waiting = st.waiting
        return DealStatus(
            workflow_id=self.workflow_id,
            workflow_type=workflow.info().workflow_type,
            crm=st.crm,
            deal_id=st.deal_id,
            deal_name=st.deal.name if st.deal else "",
            stage=st.stage,
            waiting_on=waiting.on if waiting and not st.done else WaitingOn.NOTHING,
            waiting_for=self.waiting_for() if waiting and not st.done else "",
            owner=waiting.owner if waiting and not st.done else [],
            since=waiting.since if waiting else None,
            due_at=self.due_at(),
            sla_state=self.sla_state(),
            evidence=st.evidence,
            exceptions=st.exceptions,
            missing_fields=st.missing_fields,
            accepted=st.accepted,
            history=st.history,
            history_dropped=st.history_dropped,
            policy_version=self.policy_version,
            done=st.done,
        )

    def waiting_for(self) -> str:
        """What exactly is awaited, in words (evidence waits name what is missing)."""
        waiting = self.state.waiting
        if waiting is None:
            return ""
        if waiting.evidence:
            missing = self.missing_evidence(waiting.evidence)
            return f"evidence: {', '.join(missing)}" if missing else "evidence complete"
        return waiting.what

    def due_at(self) -> datetime | None:
        clock = self.state.clock
        return clock.due_at(workflow.now()) if clock and not self.state.done else None

    def sla_state(self) -> SlaState:
        clock = self.state.clock
        return clock.state(workflow.now()) if clock and not self.state.done else "none"

    # -- evidence gate -----------------------------------------------------------------
    def missing_evidence(self, kinds: Sequence[str]) -> list[str]:
        return [k for k in kinds if not self.state.has_evidence(k)]

    async def evidence_gate(
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
        await self.wait_for(
            Wait(
                key=key,
                on=WaitingOn.EVIDENCE,
                what=what,
                evidence=rule.evidence,
                owner=self.people(rule.owner),
                ready=lambda: (
                    not self.missing_evidence(rule.evidence)
                    or (or_until is not None and or_until())
                ),
                clock=clock or rule,
                starts_at=starts_at,
                task=task,
            )
        )

    async def wait_until_time(
        self, key: str, when: datetime, *, what: str, owner: list[str]
    ) -> None:
        """A dated wait (a renewal window opening): status shows what and when."""
        st = self.state
        if st.waiting is None or st.waiting.key != key:
            st.waiting = WaitState(
                key=key,
                on=WaitingOn.TIME,
                what=what,
                owner=owner,
                since=workflow.now(),
                written=True,
            )
        self.publish()
        while (left := when - workflow.now()).total_seconds() > 0:
            if self._history_is_large():
                raise ContinueAsNewNow
            self._changed = False
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=left)
            except TimeoutError:
                break

    def _check_evidence(self, msg: EvidenceIn) -> str | None:
        if msg.kind not in self.policy.evidence:
            return f"unknown evidence kind {msg.kind!r}; allowed: {self.policy.evidence_kinds()}"
        return None

    async def _apply_evidence(self, msg: EvidenceIn) -> str:
        return self.add_evidence(msg.kind, msg.by, msg.ref, msg.note)

    def add_evidence(self, kind: str, by: str, ref: str | None, note: str | None) -> str:
        if self.state.has_evidence(kind):
            return f"{kind} was already recorded"
        self.state.evidence.append(
            EvidenceRecord(
                kind=kind, by=by, at=workflow.now(), stage=self.state.stage, ref=ref, note=note
            )
        )
        self.record("evidence", f"{kind}" + (f" ({ref})" if ref else ""), by=by)
        return f"{kind} recorded"

    # -- acceptance --------------------------------------------------------------------
    def _check_accept(self, msg: AcceptIn) -> str | None:
        waiting = self.state.waiting
        if waiting is None or waiting.team is None:
            return "no handoff is waiting for acceptance"
        if msg.team != waiting.team:
            return f"this handoff waits for team {waiting.team!r}, not {msg.team!r}"
        if msg.by not in self.people(waiting.team):
            return f"{msg.by} is not in team {waiting.team!r} ({self.people(waiting.team)})"
        if self.accepted_by(msg.team):  # a repeated delivery has the effect of one
            return f"{msg.team} has already accepted this handoff"
        return None

    async def _apply_accept(self, msg: AcceptIn) -> str:
        self.state.accepted.append(AcceptRecord(team=msg.team, by=msg.by, at=workflow.now()))
        self.record("acceptance", f"{msg.team} accepted the handoff", by=msg.by)
        return f"{msg.team} accepted"

    def accepted_by(self, team: str) -> bool:
        return any(a.team == team for a in self.state.accepted)

    # -- CRM changes -------------------------------------------------------------------
    def _check_changed(self, msg: DealChangedIn) -> str | None:
        return None

    async def _apply_changed(self, msg: DealChangedIn) -> str:
        st = self.state
        if msg.event_id:
            if msg.event_id in st.seen_events:
                return "duplicate event ignored"
            st.seen_events = [*st.seen_events[-199:], msg.event_id]
        if st.deal is not None:
            st.deal.fields.update(msg.fields)
        for kind in self.policy.evidence_in_fields(msg.fields):
            self.add_evidence(kind, f"{st.crm}@crm", msg.event_id, "from a CRM field")
        self.fields_changed()
        self.on_deal_changed(msg.fields)
        return "change applied"

    def on_deal_changed(self, fields: dict[str, str]) -> None:
        """Hook: a subclass reacts to CRM field changes (e.g. terms)."""

    # -- exceptions --------------------------------------------------------------------
    def _check_raise(self, msg: ExceptionIn) -> str | None:
        if msg.kind not in self.policy.exceptions:
            return f"unknown exception kind {msg.kind!r}; allowed: {sorted(self.policy.exceptions)}"
        if any(e.kind == msg.kind for e in self.state.open_exceptions()):
            return f"a {msg.kind} exception is already open"
        return None

    async def _apply_raise(self, msg: ExceptionIn) -> str:
        return await self.raise_exception(msg.kind, msg.by, msg.note)

    async def raise_exception(self, kind: str, by: str, note: str, *, via_crm: bool = True) -> str:
        """Open an exception: pause the clock, route it to its owner, start its own SLA."""
        rule = self.policy.exceptions[kind]
        now = workflow.now()
        owners = self.people(rule.owner)
        exc = ExceptionRecord(
            kind=kind,
            raised_by=by,
            note=note,
            raised_at=now,
            stage=self.state.stage,
            owner=owners,
            clock=ClockState.start(
                f"exception:{kind}",
                sla=rule.sla,
                now=now,
                remind_before=rule.remind_before,
                escalate_to=self.people(rule.escalate_to),
            ),
        )
        exc.due_at = exc.clock.due_at(now) if exc.clock else None
        n = len(self.state.exceptions)
        self.state.exceptions.append(exc)
        self.record("exception", f"{kind} raised: {note}", by=by)
        self._sync_pause()
        subject = f"Resolve {kind.replace('_', ' ')}: {note}"
        if via_crm:
            await self.write(
                self.key("exception", n, kind),
                notes=[f"Exception {kind} raised by {by}: {note}"],
                tasks=[(subject, owners, exc.due_at)],
            )
        else:
            await self.notify(owners, subject, note)
        return f"{kind} raised; routed to {', '.join(owners)}"

    def _check_resolve(self, msg: ExceptionIn) -> str | None:
        exc = next((e for e in self.state.open_exceptions() if e.kind == msg.kind), None)
        if exc is None:
            return f"no open {msg.kind!r} exception to resolve"
        allowed = set(exc.owner) | set(exc.clock.escalate_to if exc.clock else [])
        allowed.add(self.state.owner_email)
        if msg.by not in allowed:
            return f"{msg.by} may not resolve {msg.kind}; owners: {sorted(allowed)}"
        return None

    async def _apply_resolve(self, msg: ExceptionIn) -> str:
        exc = next(e for e in self.state.open_exceptions() if e.kind == msg.kind)
        exc.resolved_at, exc.resolved_by, exc.resolution = workflow.now(), msg.by, msg.note
        self.record("exception", f"{msg.kind} resolved: {msg.note}", by=msg.by)
        self._sync_pause()
        n = self.state.exceptions.index(exc)
        if exc.kind != CRM_WRITE_FAILED:
            await self.write(
                self.key("exception", n, exc.kind, "resolved"),
                notes=[f"Exception {exc.kind} resolved by {msg.by}: {msg.note}"],
            )
        return f"{msg.kind} resolved"

    def _sync_pause(self) -> None:
        """Open exceptions pause the stage clock; none open resumes it."""
        clock, now = self.state.clock, workflow.now()
        if clock is None:
            return
        if self.state.open_exceptions():
            clock.pause(now)
        else:
            clock.resume(now)

    # -- waits -------------------------------------------------------------------------
    async def wait_for(self, wait: Wait) -> None:
        """Wait until `wait.ready()`, with its owner, deadline, reminders and escalation.

        The first time a wait starts, the transition is written back: the stage and
        handoff-status fields, the note left by `advance()`, and a task for the owner.
        """
        st, now = self.state, workflow.now()
        if st.waiting is None or st.waiting.key != wait.key:
            st.waiting = WaitState(
                key=wait.key,
                on=wait.on,
                what=wait.what,
                owner=wait.owner,
                since=now,
                team=wait.team,
                evidence=wait.evidence,
            )
            st.clock = (
                ClockState.start(
                    wait.key,
                    sla=wait.clock.sla,
                    now=now,
                    remind_before=wait.clock.remind_before,
                    escalate_to=self.people(wait.clock.escalate_to),
                    starts_at=wait.starts_at,
                )
                if wait.clock
                else None
            )
        self._sync_pause()
        if not st.waiting.written:
            await self._write_transition(wait)
            st.waiting.written = True
        self.publish()
        recheck_at = now + wait.recheck_every if wait.recheck_every else None
        while not wait.ready():
            if self._history_is_large():
                raise ContinueAsNewNow
            at, fire = self._next_timer(wait, recheck_at)
            self._changed = False
            if at is not None and at <= workflow.now():
                await fire()
            else:
                timeout = (at - workflow.now()) if at is not None else None
                try:
                    await workflow.wait_condition(
                        lambda: wait.ready() or self._changed, timeout=timeout
                    )
                except TimeoutError:
                    await fire()
            if wait.recheck_every and recheck_at and workflow.now() >= recheck_at:
                recheck_at = workflow.now() + wait.recheck_every
            self.publish()
        st.clock = None

    def _next_timer(
        self, wait: Wait, recheck_at: datetime | None
    ) -> tuple[datetime | None, Callable[[], Awaitable[None]]]:
        """The soonest of: the stage clock, an open exception's clock, the recheck."""
        now = workflow.now()
        candidates: list[tuple[datetime, Callable[[], Awaitable[None]]]] = []
        clock = self.state.clock
        if clock is not None and (ev := clock.next_event(now)) is not None:
            candidates.append((ev[1], self._clock_firer(clock, ev[0], wait.owner)))
        for exc in self.state.open_exceptions():
            if exc.clock is not None and (ev := exc.clock.next_event(now)) is not None:
                candidates.append((ev[1], self._clock_firer(exc.clock, ev[0], exc.owner)))
        if recheck_at is not None and wait.recheck is not None:
            candidates.append((recheck_at, wait.recheck))
        if not candidates:
            return None, _nothing
        return min(candidates, key=lambda c: c[0])

    def _clock_firer(
        self, clock: ClockState, event: ClockEvent, owner: list[str]
    ) -> Callable[[], Awaitable[None]]:
        async def fire() -> None:
            due = clock.due_at(workflow.now())
            if event == "remind":
                clock.reminded = True
                self.record("reminder", f"{clock.key} is due {due:%Y-%m-%d %H:%M} UTC")
                await self.write(
                    self.key(clock.key, "remind"),
                    tasks=[(f"Reminder: {clock.key.replace('_', ' ')} is due soon", owner, due)],
                )
            else:
                clock.escalated = True
                metrics.count_escalation(clock.key.split(":")[0])
                targets = clock.escalate_to or owner
                self.record("escalation", f"{clock.key} passed its SLA; escalated to {targets}")
                await self.write(
                    self.key(clock.key, "escalate"),
                    tasks=[(f"Escalation: {clock.key.replace('_', ' ')} is overdue", targets, due)],
                )

        return fire

    def _history_is_large(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() > self.max_history_events
            or info.is_continue_as_new_suggested()
        )

    def publish(self) -> None:
        """Keep the search attributes in step with the status (for `handoff list`)."""
        st = self.state
        waiting = st.waiting
        on = waiting.on if waiting and not st.done else WaitingOn.NOTHING
        owner = waiting.owner if waiting and not st.done else []
        due = self.due_at()
        workflow.upsert_search_attributes(
            [
                names.DEAL_ID.value_set(st.deal_id),
                names.CRM.value_set(st.crm),
                names.STAGE.value_set(st.stage),
                names.WAITING_ON.value_set(on.value),
                names.OWNER.value_set(owner),
                names.DUE_AT.value_set(due) if due else names.DUE_AT.value_unset(),
            ]
        )

    # -- stage transitions -------------------------------------------------------------
    def advance(self, stage: str, note: str, fields: dict[str, FieldValue] | None = None) -> None:
        """Move to `stage`; the next wait writes `note` and `fields` with the transition."""
        previous, now = self.state.stage, workflow.now()
        metrics.observe_stage(previous, (now - self.state.stage_since).total_seconds())
        self.state.stage, self.state.stage_since = stage, now
        pending = self.state.pending_note
        self.state.pending_note = f"{pending}\n\n{note}" if pending else note
        self.state.pending_fields = {**self.state.pending_fields, **(fields or {})}
        self.record("stage", f"{previous} → {stage}")

    def evidence_summary(self, kinds: Sequence[str]) -> str:
        lines = [
            f"- {e.kind} by {e.by}" + (f" ({e.ref})" if e.ref else "") + f", {e.at:%Y-%m-%d}"
            for e in self.state.evidence
            if e.kind in kinds
        ]
        return "\n".join(lines)

    async def _write_transition(self, wait: Wait) -> None:
        st, now = self.state, workflow.now()
        due = st.clock.due_at(now) if st.clock else None
        fields: dict[str, FieldValue] = {
            "handoff_stage": st.stage,
            "handoff_status": f"waiting on {wait.what}" if not wait.ready() else "in progress",
            "handoff_owner": ", ".join(wait.owner),
            "handoff_due_at": due.isoformat() if due else None,
            **st.pending_fields,
        }
        tasks = [(wait.task, wait.owner, due)] if wait.task and not wait.ready() else []
        await self.write(
            self.key(wait.key),
            fields=fields,
            notes=[st.pending_note] if st.pending_note else [],
            tasks=tasks,
        )
        st.pending_note, st.pending_fields = None, {}

    async def finish(self, note: str, fields: dict[str, FieldValue] | None = None) -> None:
        """Write the final transition and mark the handoff done."""
        st = self.state
        st.done = True
        await self.write(
            self.key("done"),
            fields={
                "handoff_stage": st.stage,
                "handoff_status": "complete",
                "handoff_owner": "",
                "handoff_due_at": None,
                **st.pending_fields,
                **(fields or {}),
            },
            notes=[n for n in (st.pending_note, note) if n],
        )
        st.pending_note, st.pending_fields = None, {}
        st.clock = None
        self.publish()

    # -- the handoff contract ----------------------------------------------------------
    async def refresh_deal(self) -> Deal:
        """Re-read the deal from the CRM (fields change outside Handoff)."""
        deal = await self.crm_effect(  # a refused read parks the handoff like a write
            f"read {self.state.deal_id}",
            lambda: workflow.execute_activity_method(
                CrmActivities.get_deal, DealRef(deal_id=self.state.deal_id), **CRM_READ
            ),
        )
        self.state.deal = deal
        return deal

    def missing_fields(self, required: Sequence[str]) -> list[str]:
        fields = self.state.deal.fields if self.state.deal else {}
        return [f for f in required if not fields.get(f, "").strip()]

    async def require_fields(
        self, key: str, required: Sequence[str], clock: Clock, recheck_every: timedelta
    ) -> None:
        """Wait until the deal has every field in `required` (read fresh from the CRM).

        When fields are missing, the deal owner gets a CRM task naming them; the record
        is re-read on every `deal_changed` message (see `fields_changed`) and every
        `recheck_every`.
        """
        st = self.state
        await self.refresh_deal()
        st.missing_fields, self._required = self.missing_fields(required), list(required)

        async def recheck() -> None:
            await self.refresh_deal()
            st.missing_fields = self.missing_fields(required)

        if st.missing_fields:
            self.record("task", f"{key} is missing {st.missing_fields}")
            await self.wait_for(
                Wait(
                    key=f"{key}:fields",
                    on=WaitingOn.HANDOFF_FIELDS,
                    what=f"fields for {key}: {', '.join(st.missing_fields)}",
                    owner=self.people("deal_owner"),
                    ready=lambda: not st.missing_fields,
                    clock=clock,
                    task=f"Fill in for {key.replace('_', ' ')}: " + ", ".join(st.missing_fields),
                    recheck_every=recheck_every,
                    recheck=recheck,
                )
            )
        self._required = []

    async def check_contract(self, contract: Literal["sales_to_ops", "ops_to_billing"]) -> None:
        """The handoff contract: the next team's required fields (see `require_fields`)."""
        rule = self.policy.contracts[contract]
        await self.require_fields(contract, rule.fields, rule, rule.recheck_every)

    def fields_changed(self) -> None:
        """A CRM change arrived: re-check the fields a `require_fields` wait needs."""
        if self._required:
            self.state.missing_fields = self.missing_fields(self._required)

    # -- effects -----------------------------------------------------------------------
    async def write(
        self,
        key: str,
        *,
        fields: dict[str, FieldValue] | None = None,
        notes: Sequence[str] = (),
        tasks: Sequence[tuple[str, list[str], datetime | None]] = (),
    ) -> WriteReceipt:
        """One idempotent CRM write-back: fields, notes and (subject, owners, due) tasks.

        If the CRM refuses it for good, the handoff parks on a `crm_write_failed`
        exception until someone resolves it, then writes again. Nothing is lost.
        """
        batch = WriteBack(
            deal_id=self.state.deal_id,
            key=key,
            fields=fields or {},
            notes=[NoteSpec(body=body, key=f"{key}:note:{i}") for i, body in enumerate(notes)],
            tasks=[
                TaskSpec(subject=subject, owner_email=o, due_at=due, key=f"{key}:task:{o}")
                for subject, owners, due in tasks
                for o in owners
            ],
        )
        return await self.crm_effect(
            key,
            lambda: workflow.execute_activity_method(CrmActivities.write_back, batch, **CRM_WRITE),
        )

    async def crm_effect(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a CRM activity; on a permanent failure park until resolved, then retry."""
        while True:
            try:
                return await call()
            except ActivityError as err:
                await self.park_on_crm_failure(key, err)

    async def park_on_crm_failure(self, key: str, err: ActivityError) -> None:
        """Park on `crm_write_failed` until someone resolves it; status says so meanwhile."""
        cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
        st = self.state

        def parked() -> bool:
            return any(e.kind == CRM_WRITE_FAILED for e in st.open_exceptions())

        if not parked():
            await self.raise_exception(
                CRM_WRITE_FAILED, "handoff", f"write {key} refused: {cause}", via_crm=False
            )
        resume, owners = st.waiting, self.people(self.policy.exceptions[CRM_WRITE_FAILED].owner)
        st.waiting = WaitState(
            key=f"parked:{key}",
            on=WaitingOn.EXCEPTION,
            owner=owners,
            since=workflow.now(),
            what=f"{CRM_WRITE_FAILED} to be resolved (the CRM refused a write)",
            written=True,
        )
        self.publish()
        await workflow.wait_condition(lambda: not parked())
        st.waiting = resume
        self.publish()

    async def notify(self, to: list[str], subject: str, body: str) -> None:
        await workflow.execute_activity_method(
            NotifyActivities.send,
            Notice(
                to=to,
                subject=subject,
                body=body,
                crm=self.state.crm,
                deal_id=self.state.deal_id,
                workflow_id=self.workflow_id,
            ),
            **NOTIFY,
        )

    async def drain_and_continue_as_new(self, make_input: Callable[[], Any]) -> NoReturn:
        """Let running handlers finish, then continue as new with the current state."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(make_input())


async def _nothing() -> None:
    """The timer action when there is no timer (never fired: no timeout is set)."""


def parse_date(text: str | None) -> datetime | None:
    """A CRM date or datetime (`2026-12-01`, ISO 8601) as an aware UTC datetime."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)

"""Waits: every wait has an owner and a deadline, on one SLA clock loop.

`wait_for(Wait(...))` waits until the wait is ready. The first time a wait starts, the
transition is written back (stage and status fields, the pending note, a task for the
owner). Meanwhile the soonest of the stage clock, an open exception's clock and the
wait's recheck fires: a reminder before the deadline, an escalation when it passes
(or the wait's own `on_remind`/`on_escalate`, e.g. the approval ladder's). A message
wakes the loop to re-check readiness. A large history continues the run as new.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import metrics
from workflows.kit.clock import ClockEvent, ClockState
from workflows.kit.patches import patched
from workflows.kit.state import Wait, WaitState
from workflows.names import WaitingOn
from workflows.policy_people import calendar_for

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

Fire = Callable[[], Awaitable[None]]
#: `workflow.patched` id: clocks climb an escalation ladder and never fall silent.
ESCALATION_LADDER = "escalation-ladder"
#: `workflow.patched` id: a clock counts its team's business hours (policy `calendars`).
BUSINESS_CALENDAR = "business-calendar"


class HandoffOver(BaseException):
    """Raised inside a wait when the handoff ended outside its process (the deal was
    lost in the CRM); `run()` closes it. A `BaseException`, like `ContinueAsNewNow`."""


class ContinueAsNewNow(BaseException):
    """Raised inside a wait when the run's history is large; `run()` continues as new.

    A `BaseException`, like the SDK's `ContinueAsNewError`, so no `except Exception`
    on the way up can swallow it.
    """


class Waits:
    """The waits of one handoff (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    async def wait_for(self, wait: Wait) -> None:
        """Wait until `wait.ready()`, with its owner, deadline, reminders and escalation."""
        h, st, now = self._h, self._h.state, workflow.now()
        new = st.waiting is None or st.waiting.key != wait.key
        if new:
            st.waiting = WaitState(
                key=wait.key,
                on=wait.on,
                what=wait.what,
                owner=wait.owner,
                since=now,
                team=wait.team,
                evidence=wait.evidence,
                written=not wait.write,
            )
            st.clock = self._start_clock(wait, now)
        self._count_business_hours(wait)
        self.sync_pause()
        waiting = st.waiting
        assert waiting is not None
        if not waiting.written:
            await h.crm.write_transition(wait)
            waiting.written = True
        if new and wait.on_start is not None:
            await wait.on_start()
        h.publish()
        recheck_at = now + wait.recheck_every if wait.recheck_every else None

        def done() -> bool:  # ready, and no blocking exception holds the stage
            return bool(st.outcome) or (wait.ready() and not h.exceptions.holding())

        while not done():
            self.continue_as_new_if_large()
            at, fire = self._next_timer(wait, recheck_at)
            h.changed = False
            if at is not None and at <= workflow.now():
                await fire()
            else:
                timeout = (at - workflow.now()) if at is not None else None
                try:
                    await workflow.wait_condition(lambda: done() or h.changed, timeout=timeout)
                except TimeoutError:
                    await fire()
            if wait.recheck_every and recheck_at and workflow.now() >= recheck_at:
                recheck_at = workflow.now() + wait.recheck_every
            self._count_business_hours(wait)  # a clock started by an escalation, too
            h.publish()
        st.clock = None
        h.crm.close_group(wait.key)
        if st.outcome:
            raise HandoffOver

    def count_hours(self, clock: ClockState | None, owner: list[str]) -> None:
        """Put `clock` on the business calendar of `owner`'s team, if the policy has one
        (a clock already on one, or started before calendars existed, stays as it is)."""
        h = self._h
        if clock is None or clock.calendar is not None or not h.policy.calendars:
            return
        calendar = calendar_for(h.policy.calendars, h.policy.people, owner, h.state.owner_email)
        if calendar is not None and patched(h, BUSINESS_CALENDAR):
            clock.calendar = calendar

    def _count_business_hours(self, wait: Wait) -> None:
        st = self._h.state
        self.count_hours(st.clock, wait.owner)
        for exc in st.open_exceptions():
            self.count_hours(exc.clock, exc.owner)

    def _start_clock(self, wait: Wait, now: datetime) -> ClockState | None:
        if wait.clock is None or isinstance(wait.clock, ClockState):
            return wait.clock
        return ClockState.start(
            wait.key,
            sla=wait.clock.sla,
            now=now,
            remind_before=wait.clock.remind_before,
            escalate_to=self._h.people(wait.clock.escalate_to),
            starts_at=wait.starts_at,
            ladder=[self._h.people(r) for r in wait.clock.then_escalate_to],
            repeat=patched(self._h, ESCALATION_LADDER),
        )

    async def wait_until_time(
        self, key: str, when: datetime, *, what: str, owner: list[str]
    ) -> None:
        """A dated wait (a renewal window opening): status shows what and when."""
        h, st = self._h, self._h.state
        if st.waiting is None or st.waiting.key != key:
            st.waiting = WaitState(
                key=key,
                on=WaitingOn.TIME,
                what=what,
                owner=owner,
                since=workflow.now(),
                written=True,
            )
        h.publish()
        while (left := when - workflow.now()).total_seconds() > 0:
            self.continue_as_new_if_large()
            h.changed = False
            try:
                await workflow.wait_condition(lambda: h.changed, timeout=left)
            except TimeoutError:
                break
            if st.outcome:
                raise HandoffOver

    def continue_as_new_if_large(self) -> None:
        """Raise `ContinueAsNewNow` once the run's history is large."""
        info = workflow.info()
        if (
            info.get_current_history_length() > self._h.max_history_events
            or info.is_continue_as_new_suggested()
        ):
            raise ContinueAsNewNow

    def sync_pause(self) -> None:
        """Open exceptions pause the stage clock; none open resumes it."""
        st, now = self._h.state, workflow.now()
        if st.clock is None:
            return
        if st.open_exceptions():
            st.clock.pause(now)
        else:
            st.clock.resume(now)

    # -- timers ------------------------------------------------------------------------
    def _next_timer(self, wait: Wait, recheck_at: datetime | None) -> tuple[datetime | None, Fire]:
        """The soonest of: the stage clock, an open exception's clock, the recheck."""
        st, now = self._h.state, workflow.now()
        candidates: list[tuple[datetime, Fire]] = []
        if st.clock is not None and (ev := st.clock.next_event(now)) is not None:
            candidates.append((ev[1], self._firer(st.clock, ev[0], wait.owner, wait)))
        for exc in st.open_exceptions():
            if exc.clock is not None and (ev := exc.clock.next_event(now)) is not None:
                candidates.append((ev[1], self._firer(exc.clock, ev[0], exc.owner, None)))
        if recheck_at is not None and wait.recheck is not None:
            candidates.append((recheck_at, wait.recheck))
        if not candidates:
            return None, _nothing
        return min(candidates, key=lambda c: c[0])

    def _firer(
        self, clock: ClockState, event: ClockEvent, owner: list[str], wait: Wait | None
    ) -> Fire:
        h = self._h

        async def fire() -> None:
            due = clock.due_at(workflow.now())
            # a person reads these: the wait in words, or the exception by its kind
            label = wait.what if wait is not None else f"{clock.key.split(':')[-1]} exception"
            if event == "remind":
                clock.reminded = True
                if wait is not None and wait.on_remind is not None:
                    return await wait.on_remind(clock)
                h.audit.record("reminder", f"{label} is due {due:%Y-%m-%d %H:%M} UTC")
                await h.crm.write(
                    h.key(clock.key, "remind"),
                    tasks=[(f"Reminder: {label} is due soon", owner, due)],
                    group=clock.key,
                )
                return
            clock.escalated = True
            if wait is not None and wait.on_escalate is not None:
                return await wait.on_escalate(clock)
            metrics.count_escalation(clock.key.split(":")[0])
            targets = clock.escalate_to or owner
            h.audit.record(
                "escalation", f"{label} passed its SLA; escalated to {', '.join(targets)}"
            )
            level = f":{clock.level}" if clock.level else ""  # a new task at each level
            await h.crm.write(
                h.key(clock.key, f"escalate{level}"),
                tasks=[(f"Escalation: {label} is overdue", targets, due)],
                group=clock.key,
            )
            clock.climb(workflow.now())

        return fire


async def _nothing() -> None:
    """The timer action when there is no timer (never fired: no timeout is set)."""

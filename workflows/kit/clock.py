"""The SLA clock: due after a duration, a reminder before, escalation after; pausable.

A clock is plain data so it survives continue-as-new inside the workflow state. Time
always comes from the caller (`workflow.now()`), never from the wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from workflows.business_hours import BusinessCalendar

ClockEvent = Literal["remind", "escalate"]
SlaState = Literal["ok", "due_soon", "breached", "escalated", "paused", "none"]


class ClockState(BaseModel):
    """A running, paused or escalated SLA clock."""

    key: str = Field(description="What the clock times, e.g. 'qualify' or 'exception:legal'.")
    sla_s: float
    remind_before_s: float = 0.0
    escalate_to: list[str] = Field(default_factory=list)
    anchor: datetime = Field(description="When the clock last (re)started running.")
    spent_s: float = Field(default=0.0, description="Running time before `anchor`.")
    paused: bool = False
    reminded: bool = False
    escalated: bool = False
    ladder: list[list[str]] = Field(
        default_factory=list, description="People of the escalation levels still to come."
    )
    repeat: bool = Field(
        default=False, description="After the last level, escalate again every SLA period."
    )
    level: int = Field(default=0, description="Escalations so far.")
    calendar: BusinessCalendar | None = Field(
        default=None, description="Counts working hours only; none: round the clock."
    )

    @classmethod
    def start(
        cls,
        key: str,
        *,
        sla: timedelta,
        now: datetime,
        remind_before: timedelta = timedelta(0),
        escalate_to: list[str] | None = None,
        starts_at: datetime | None = None,
        ladder: list[list[str]] | None = None,
        repeat: bool = False,
    ) -> ClockState:
        """A clock that runs from `starts_at` (default: now); after escalating to
        `escalate_to`, it climbs `ladder`, then repeats the last level until stopped."""
        return cls(
            key=key,
            sla_s=sla.total_seconds(),
            remind_before_s=remind_before.total_seconds(),
            escalate_to=list(escalate_to or []),
            anchor=starts_at or now,
            ladder=[list(level) for level in ladder or []],
            repeat=repeat,
        )

    def climb(self, now: datetime) -> None:
        """After an escalation: the next level (or the same, again) one SLA from now.

        Clocks from before escalation ladders (`repeat` false) stay escalated, silent.
        """
        self.level += 1
        if not self.repeat and not self.ladder:
            return
        if self.ladder:
            self.escalate_to = self.ladder.pop(0)
        self.escalated, self.reminded = False, True
        self.anchor, self.spent_s = now, 0.0

    def due_at(self, now: datetime) -> datetime:
        """When the SLA passes; a paused clock's due time moves with `now`."""
        return self._after(now, self.sla_s)

    def _after(self, now: datetime, running_s: float) -> datetime:
        """When the clock will have run `running_s` in all (working time on a calendar)."""
        base, left = (now if self.paused else self.anchor), running_s - self.spent_s
        if self.calendar is None:
            return base + timedelta(seconds=left)
        return self.calendar.add(base, left)

    def pause(self, now: datetime) -> None:
        if not self.paused:
            ran = (now - self.anchor).total_seconds()
            self.spent_s += self.calendar.between(self.anchor, now) if self.calendar else ran
            self.paused = True

    def resume(self, now: datetime) -> None:
        if self.paused:
            self.anchor = now
            self.paused = False

    def next_event(self, now: datetime) -> tuple[ClockEvent, datetime] | None:
        """The next thing the clock will do and when, or None if it is done or paused."""
        if self.paused or self.escalated:
            return None
        due = self.due_at(now)
        if not self.reminded and self.remind_before_s > 0:
            if self.calendar is not None:  # the reminder too counts working hours
                return "remind", self._after(now, self.sla_s - self.remind_before_s)
            return "remind", due - timedelta(seconds=self.remind_before_s)
        return "escalate", due

    def state(self, now: datetime) -> SlaState:
        """ok, due_soon, breached, escalated or paused, for the status and the stall board."""
        if self.paused:
            return "paused"
        if self.escalated or self.level:
            return "escalated"
        due = self.due_at(now)
        if now >= due:
            return "breached"
        soon = self.remind_before_s or 86_400
        if self.calendar is not None:
            soon_at = self._after(now, self.sla_s - soon)
        else:
            soon_at = due - timedelta(seconds=soon)
        if self.reminded or now >= soon_at:
            return "due_soon"
        return "ok"


def parse_date(text: str | None) -> datetime | None:
    """A CRM date or datetime (`2026-12-01`, ISO 8601) as an aware UTC datetime."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)

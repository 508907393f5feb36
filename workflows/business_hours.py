"""Business calendars: SLAs and reminders that count working hours, not nights,
weekends or holidays, in a team's own time zone.

A `BusinessCalendar` is plain data (a time zone name, working days, opening hours and a
holiday list), so it travels inside a clock in the workflow state and survives
continue-as-new. Its arithmetic is pure: the same instants in, the same instants out,
whatever the machine's own zone (deterministic inside workflows).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

# Inside workflows this module is passed through the sandbox (worker.processes.worker
# PASSTHROUGH_MODULES): a sandboxed `zoneinfo` hands out proxies that are no `tzinfo`.
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS: tuple[Day, ...] = _DAYS[:5]
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
#: How far ahead a due time is looked for (a calendar with a working day a year is odd,
#: one with none at all is refused at load).
_HORIZON_DAYS = 3 * 366


class BusinessCalendar(BaseModel):
    """When a team works: `timezone` (IANA name), `days`, `hours` ("09:00-17:00") and
    `holidays` (dates, in the team's zone). `roles` are the policy roles (or
    `deal_owner`) whose waits this calendar counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    days: list[Day] = Field(default_factory=lambda: list(_WEEKDAYS))
    hours: str = Field(default="09:00-17:00", description="Opening hours, HH:MM-HH:MM.")
    holidays: list[date] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name)") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        match = _HOURS.match(value.strip())
        if match is None:
            raise ValueError(f"hours must look like 09:00-17:00, got {value!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h2, m2) <= (h1, m1) or (h2 == 24 and m2):
            raise ValueError(f"hours must close after they open, got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _some_working_day(self) -> BusinessCalendar:
        if not self.days:
            raise ValueError("days: at least one working day is required")
        return self

    # -- arithmetic -------------------------------------------------------------------
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """That day's opening hours as UTC instants, or None on a day off."""
        if _DAYS[day.weekday()] not in self.days or day in self.holidays:
            return None
        h1, m1, h2, m2 = (int(g) for g in _HOURS.match(self.hours).groups())  # type: ignore[union-attr]
        zone = self._zone()
        opens = datetime.combine(day, time(h1, m1), zone)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0, 0), zone)
            if h2 == 24
            else datetime.combine(day, time(h2, m2), zone)
        )
        return opens.astimezone(UTC), closes.astimezone(UTC)  # UTC: exact across DST

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant `seconds` of working time after `start` (UTC)."""
        left = timedelta(seconds=seconds)
        start = start.astimezone(UTC)
        if left <= timedelta(0):
            return start
        day = start.astimezone(self._zone()).date()
        for _ in range(_HORIZON_DAYS):
            window = self._window(day)
            if window is not None:
                begin, end = max(start, window[0]), window[1]
                if begin < end:
                    if left <= end - begin:
                        return begin + left
                    left -= end - begin
            day += timedelta(days=1)
        return start + timedelta(seconds=seconds)  # no working day in sight: wall time

    def between(self, start: datetime, end: datetime) -> float:
        """Working seconds from `start` to `end` (0 when `end` is not after `start`)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return 0.0
        total = timedelta(0)
        zone = self._zone()
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        while day <= last:
            window = self._window(day)
            if window is not None:
                begin, finish = max(start, window[0]), min(end, window[1])
                if begin < finish:
                    total += finish - begin
            day += timedelta(days=1)
        return total.total_seconds()

    def is_open(self, at: datetime) -> bool:
        window = self._window(at.astimezone(self._zone()).date())
        return window is not None and window[0] <= at < window[1]

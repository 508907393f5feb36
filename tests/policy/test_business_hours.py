"""Business calendars: working time skips nights, weekends and holidays in the team's
own zone (across a DST change too), and a bad calendar is refused naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from workflows.business_hours import BusinessCalendar
from workflows.kit.clock import ClockState
from workflows.policy import DEFAULT_POLICY_PATH, PolicyError, parse_policy
from workflows.policy_people import calendar_for

NY = ZoneInfo("America/New_York")
SALES = BusinessCalendar(
    timezone="America/New_York", hours="09:00-17:00", holidays=[date(2026, 12, 25)]
)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_four_hours_from_friday_afternoon_is_monday_morning() -> None:
    """Friday 15:00 + 4 working hours: 2 on Friday, 2 on Monday → Monday 11:00 local."""
    assert SALES.add(ny(2026, 12, 4, 15), 4 * 3600) == ny(2026, 12, 7, 11).astimezone(UTC)


def test_a_holiday_is_skipped() -> None:
    """Thursday 16:00 + 2h, Friday the 25th a holiday → Monday 10:00."""
    assert SALES.add(ny(2026, 12, 24, 16), 2 * 3600) == ny(2026, 12, 28, 10).astimezone(UTC)


def test_time_before_opening_starts_at_opening() -> None:
    assert SALES.add(ny(2026, 12, 7, 6), 3600) == ny(2026, 12, 7, 10).astimezone(UTC)


def test_between_counts_only_open_hours() -> None:
    """From Friday 15:00 to Monday 11:00 is four working hours."""
    assert SALES.between(ny(2026, 12, 4, 15), ny(2026, 12, 7, 11)) == 4 * 3600
    assert SALES.between(ny(2026, 12, 7, 11), ny(2026, 12, 4, 15)) == 0


def test_a_dst_change_keeps_local_opening_hours() -> None:
    """Across the November change in New York, 9:00 local stays 9:00 local."""
    start = ny(2026, 10, 30, 16)  # Friday, EDT
    due = SALES.add(start, 2 * 3600)  # 1h Friday, 1h Monday (EST)
    assert due.astimezone(NY) == ny(2026, 11, 2, 10)
    assert due.utcoffset() == timedelta(0)


def test_a_clock_on_a_calendar_is_due_in_working_time_and_pauses_in_working_time() -> None:
    start = ny(2026, 12, 4, 15).astimezone(UTC)
    clock = ClockState.start(
        "qualify", sla=timedelta(hours=4), remind_before=timedelta(hours=1), now=start
    )
    clock.calendar = SALES
    assert clock.due_at(start) == ny(2026, 12, 7, 11).astimezone(UTC)
    event = clock.next_event(start)
    assert event == ("remind", ny(2026, 12, 7, 10).astimezone(UTC))
    clock.pause(ny(2026, 12, 5, 12).astimezone(UTC))  # Saturday: 2 working hours spent
    assert clock.spent_s == 2 * 3600
    clock.resume(ny(2026, 12, 7, 9).astimezone(UTC))
    assert clock.due_at(ny(2026, 12, 7, 9).astimezone(UTC)) == ny(2026, 12, 7, 11).astimezone(UTC)


def test_a_clock_without_a_calendar_counts_round_the_clock() -> None:
    start = ny(2026, 12, 4, 15).astimezone(UTC)
    clock = ClockState.start("qualify", sla=timedelta(hours=4), now=start)
    assert clock.due_at(start) == start + timedelta(hours=4)


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return data


def test_the_calendar_of_a_wait_follows_its_owners_role() -> None:
    """The deal owner's wait counts sales hours; operations' counts the default."""
    data = default_data()
    data["calendars"] = {
        "sales": {"timezone": "America/New_York", "roles": ["deal_owner", "sales_manager"]},
        "default": {"timezone": "Europe/Berlin", "hours": "08:00-16:00"},
    }
    policy = parse_policy(data)
    cals, people = policy.calendars, policy.people
    assert (
        calendar_for(cals, people, ["sam.rep@example.com"], "sam.rep@example.com")
        == (cals["sales"])
    )
    assert (
        calendar_for(cals, people, ["maya.manager@example.com"], "x@example.com") == (cals["sales"])
    )
    assert (
        calendar_for(cals, people, ["olga.ops@example.com"], "x@example.com") == (cals["default"])
    )


def test_a_policy_without_calendars_keeps_its_version() -> None:
    """Calendars unset: the content hash is the one policies had before calendars."""
    data = default_data()
    plain = parse_policy(data)
    data["calendars"] = {}
    assert parse_policy(data).version == plain.version
    data["calendars"] = {"default": {"timezone": "UTC"}}
    assert parse_policy(data).version != plain.version


@pytest.mark.parametrize(
    ("calendar", "named"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"hours": "9-5"}, "hours must look like 09:00-17:00"),
        ({"hours": "17:00-09:00"}, "hours must close after they open"),
        ({"days": []}, "at least one working day"),
        ({"days": ["funday"]}, "calendars.sales.days.0"),
        ({"roles": ["wizard"]}, "calendars.sales.roles: unknown role 'wizard'"),
        ({"holidays": ["someday"]}, "calendars.sales.holidays.0"),
    ],
)
def test_a_bad_calendar_is_refused_naming_the_field(calendar: dict[str, Any], named: str) -> None:
    data = default_data()
    data["calendars"] = {"sales": calendar}
    with pytest.raises(PolicyError, match="calendars") as info:
        parse_policy(data)
    assert named in str(info.value)


def test_a_role_in_two_calendars_is_refused() -> None:
    data = default_data()
    data["calendars"] = {"a": {"roles": ["billing"]}, "b": {"roles": ["billing"]}}
    with pytest.raises(PolicyError, match="already in calendar 'a'"):
        parse_policy(data)


def test_calendar_models_refuse_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        BusinessCalendar.model_validate({"timezone": "UTC", "weekends": True})

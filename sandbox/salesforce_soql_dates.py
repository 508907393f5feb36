"""SOQL date literals and date functions, in the org's time zone (the sandbox org is UTC).

A date literal is a range of days ``[start, end)`` relative to today, as the SOQL and SOSL
Reference ("Date Formats and Date Literals in WHERE") defines it: ``=`` means inside the
range, ``<`` before its start, ``>`` after its end. Weeks start on Sunday (the en_US
locale) and the fiscal year is the calendar year (the default fiscal year setting).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

Range = tuple[date, date]


def _month_start(day: date, shift: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _quarter_start(day: date, shift: int = 0) -> date:
    return _month_start(date(day.year, (day.month - 1) // 3 * 3 + 1, 1), 3 * shift)


def _week_start(day: date, shift: int = 0) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7) + timedelta(weeks=shift)


def _year_start(day: date, shift: int = 0) -> date:
    return date(day.year + shift, 1, 1)


def _span(start: Callable[[date, int], date], day: date, first: int, last: int) -> Range:
    """From the start of period `first` to the start of period `last` (relative to now)."""
    return start(day, first), start(day, last)


def _days(first: int, last: int) -> Callable[[date, int], Range]:
    return lambda d, _n: (d + timedelta(days=first), d + timedelta(days=last))


_PERIODS: dict[str, Callable[[date, int], date]] = {
    "WEEK": _week_start,
    "MONTH": _month_start,
    "QUARTER": _quarter_start,
    "YEAR": _year_start,
    "FISCAL_QUARTER": _quarter_start,
    "FISCAL_YEAR": _year_start,
}
RANGE_LITERALS: dict[str, Callable[[date, int], Range]] = {
    "YESTERDAY": _days(-1, 0),
    "TODAY": _days(0, 1),
    "TOMORROW": _days(1, 2),
    "LAST_90_DAYS": _days(-90, 1),
    "NEXT_90_DAYS": _days(1, 91),
}
N_LITERALS: dict[str, Callable[[date, int], Range]] = {
    "LAST_N_DAYS": lambda d, n: (d - timedelta(days=n), d + timedelta(days=1)),
    "NEXT_N_DAYS": lambda d, n: (d + timedelta(days=1), d + timedelta(days=n + 1)),
    "N_DAYS_AGO": lambda d, n: (d - timedelta(days=n), d - timedelta(days=n - 1)),
}


def _period(
    start: Callable[[date, int], date], first: int, last: int
) -> Callable[[date, int], Range]:
    return lambda d, _n: _span(start, d, first, last)


def _n_periods(start: Callable[[date, int], date], kind: str) -> Callable[[date, int], Range]:
    spans: dict[str, Callable[[int], tuple[int, int]]] = {
        "LAST": lambda n: (-n, 0),
        "NEXT": lambda n: (1, n + 1),
        "AGO": lambda n: (-n, -n + 1),
    }
    return lambda d, n: _span(start, d, *spans[kind](n))


for _unit, _start in _PERIODS.items():
    RANGE_LITERALS[f"THIS_{_unit}"] = _period(_start, 0, 1)
    RANGE_LITERALS[f"LAST_{_unit}"] = _period(_start, -1, 0)
    RANGE_LITERALS[f"NEXT_{_unit}"] = _period(_start, 1, 2)
    N_LITERALS[f"LAST_N_{_unit}S"] = _n_periods(_start, "LAST")
    N_LITERALS[f"NEXT_N_{_unit}S"] = _n_periods(_start, "NEXT")
    N_LITERALS[f"N_{_unit}S_AGO"] = _n_periods(_start, "AGO")


def date_range(name: str, n: int, today: date | None = None) -> Range:
    """The ``[start, end)`` days that the literal `name` (with `n` for the ``:n`` forms) covers."""
    day = today or datetime.now(UTC).date()
    table = N_LITERALS if name in N_LITERALS else RANGE_LITERALS
    return table[name](day, n)


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


DATE_FUNCTIONS: dict[str, Callable[[datetime], int | date]] = {
    "CALENDAR_MONTH": lambda v: v.month,
    "CALENDAR_QUARTER": lambda v: (v.month - 1) // 3 + 1,
    "CALENDAR_YEAR": lambda v: v.year,
    "DAY_IN_MONTH": lambda v: v.day,
    "DAY_IN_WEEK": lambda v: (v.weekday() + 1) % 7 + 1,  # 1 = Sunday
    "DAY_IN_YEAR": lambda v: v.timetuple().tm_yday,
    "DAY_ONLY": lambda v: v.date(),
    "FISCAL_MONTH": lambda v: v.month,
    "FISCAL_QUARTER": lambda v: (v.month - 1) // 3 + 1,
    "FISCAL_YEAR": lambda v: v.year,
    "HOUR_IN_DAY": lambda v: v.hour,
    "WEEK_IN_MONTH": lambda v: (v.day - 1) // 7 + 1,
    "WEEK_IN_YEAR": lambda v: (v.timetuple().tm_yday - 1) // 7 + 1,
}


def apply_date_function(name: str, value: date | datetime | None) -> int | date | None:
    """A date function's value (``CALENDAR_YEAR(CloseDate)``...); null stays null."""
    return None if value is None else DATE_FUNCTIONS[name](_as_datetime(value))

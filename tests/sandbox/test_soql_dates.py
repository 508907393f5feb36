"""SOQL date literals and date functions cover the ranges the SOQL reference documents."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from sandbox.salesforce_soql_dates import apply_date_function, date_range

TODAY = date(2026, 5, 14)  # a Thursday in the second quarter


@pytest.mark.parametrize(
    ("literal", "n", "start", "end"),
    [
        ("TODAY", 0, date(2026, 5, 14), date(2026, 5, 15)),
        ("YESTERDAY", 0, date(2026, 5, 13), date(2026, 5, 14)),
        ("TOMORROW", 0, date(2026, 5, 15), date(2026, 5, 16)),
        ("LAST_N_DAYS", 1, date(2026, 5, 13), date(2026, 5, 15)),  # yesterday and today
        ("NEXT_N_DAYS", 2, date(2026, 5, 15), date(2026, 5, 17)),  # starts tomorrow
        ("N_DAYS_AGO", 3, date(2026, 5, 11), date(2026, 5, 12)),
        ("LAST_90_DAYS", 0, TODAY - timedelta(days=90), date(2026, 5, 15)),  # 91 days
        ("THIS_WEEK", 0, date(2026, 5, 10), date(2026, 5, 17)),  # Sunday to Saturday
        ("LAST_WEEK", 0, date(2026, 5, 3), date(2026, 5, 10)),
        ("THIS_MONTH", 0, date(2026, 5, 1), date(2026, 6, 1)),
        ("LAST_MONTH", 0, date(2026, 4, 1), date(2026, 5, 1)),
        ("NEXT_N_MONTHS", 2, date(2026, 6, 1), date(2026, 8, 1)),
        ("THIS_QUARTER", 0, date(2026, 4, 1), date(2026, 7, 1)),
        ("LAST_QUARTER", 0, date(2026, 1, 1), date(2026, 4, 1)),
        ("THIS_YEAR", 0, date(2026, 1, 1), date(2027, 1, 1)),
        ("LAST_N_YEARS", 2, date(2024, 1, 1), date(2026, 1, 1)),
        ("N_YEARS_AGO", 1, date(2025, 1, 1), date(2026, 1, 1)),
        ("THIS_FISCAL_YEAR", 0, date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_date_literal_ranges(literal: str, n: int, start: date, end: date) -> None:
    """Each literal covers the documented days: [start, end) relative to today."""
    assert date_range(literal, n, TODAY) == (start, end)


def test_date_functions_read_parts_of_dates_and_datetimes() -> None:
    """CALENDAR_*, DAY_IN_* and friends read a date or a UTC datetime; null stays null."""
    moment = datetime.fromisoformat("2026-05-14T17:30:00+00:00")
    assert apply_date_function("CALENDAR_YEAR", TODAY) == 2026
    assert apply_date_function("CALENDAR_QUARTER", TODAY) == 2
    assert apply_date_function("DAY_IN_WEEK", TODAY) == 5  # Sunday is 1
    assert apply_date_function("DAY_IN_YEAR", TODAY) == 134
    assert apply_date_function("HOUR_IN_DAY", moment) == 17
    assert apply_date_function("DAY_ONLY", moment) == TODAY
    assert apply_date_function("CALENDAR_MONTH", None) is None

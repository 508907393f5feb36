"""The policy's people rules: business calendars (which team counts which hours) and,
through them, what a wait's clock counts. Kept apart from `workflows.policy` so the
policy model only gains fields; the rules that read them live here.

```yaml
calendars:
  sales:
    timezone: America/New_York
    days: [mon, tue, wed, thu, fri]
    hours: "09:00-17:00"
    holidays: [2026-12-25, 2027-01-01]
    roles: [deal_owner, sales_rep, sales_manager, vp_sales]
  default:            # every other wait; without one they count round the clock
    timezone: Europe/London
```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from workflows.business_hours import BusinessCalendar
from workflows.policy_rules import DEAL_OWNER

#: The calendar for waits whose owners no calendar names.
DEFAULT_CALENDAR = "default"

#: Policy fields this module reads; left out of the version hash while empty, so a
#: policy that does not use them keeps the version it had before they existed.
PEOPLE_FIELDS = ("calendars",)


def calendar_problems(calendars: Mapping[str, BusinessCalendar], roles: set[str]) -> list[str]:
    """Unknown roles, and a role counted by two calendars."""
    problems: list[str] = []
    owner_of: dict[str, str] = {}
    for name, cal in calendars.items():
        for role in cal.roles:
            if role not in roles:
                problems.append(
                    f"calendars.{name}.roles: unknown role {role!r} (known: {sorted(roles)})"
                )
            elif role in owner_of:
                problems.append(
                    f"calendars.{name}.roles: {role!r} is already in calendar {owner_of[role]!r}"
                )
            else:
                owner_of[role] = name
    return problems


def calendar_for(
    calendars: Mapping[str, BusinessCalendar],
    people: Mapping[str, list[str]],
    owners: Iterable[str],
    deal_owner: str,
) -> BusinessCalendar | None:
    """The calendar that counts a wait of `owners` (emails): that of the first owner's
    role a calendar names (the deal's owner as `deal_owner`), else `default`, else none
    (round the clock)."""
    if not calendars:
        return None
    for person in owners:
        roles = [DEAL_OWNER] if person == deal_owner else []
        roles += [role for role, emails in people.items() if person in emails]
        for role in roles:
            for cal in calendars.values():
                if role in cal.roles:
                    return cal
    return calendars.get(DEFAULT_CALENDAR)

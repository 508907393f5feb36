"""The policy's people rules: business calendars (which team counts which hours) and,
through them, what a wait's clock counts; and stand-ins (who acts for someone who left
or is away). Kept apart from `workflows.policy` so the policy model only gains fields;
the rules that read them live here.

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
directory:            # who manages whom: the role `owner_manager` is the deal owner's
  sam.rep@example.com: {manager: maya.manager@example.com, team: sales-east}
team_managers:        # who manages each CRM team (HubSpot owners' primary team)
  Sales East: maya.manager@example.com
```

`owner_manager` is, first, the owner's manager in the CRM (Salesforce `User.ManagerId`;
for HubSpot, whose owners carry no manager, the `team_managers` entry of the owner's
primary team), read when the handoff opens and when the owner changes; then the
`directory`; then the people of `sales_manager` (`workflows/kit/managers.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from workflows.business_hours import BusinessCalendar
from workflows.policy_rules import DEAL_OWNER

#: The calendar for waits whose owners no calendar names.
DEFAULT_CALENDAR = "default"

#: Policy fields this module reads; left out of the version hash while empty, so a
#: policy that does not use them keeps the version it had before they existed.
PEOPLE_FIELDS = ("calendars", "directory", "team_managers")

#: The role of the deal owner's manager, resolved per deal from the policy `directory`.
OWNER_MANAGER = "owner_manager"
#: Who `owner_manager` is when the directory names no manager for the deal's owner.
OWNER_MANAGER_FALLBACK = "sales_manager"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: A manager's email in the policy (lower-cased).
ManagerEmail = Annotated[str, StringConstraints(pattern=_EMAIL, to_lower=True)]


class PersonEntry(BaseModel):
    """One person in the policy's directory: their manager and team."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manager: ManagerEmail | None = None
    team: str | None = None


def manager_of(
    directory: Mapping[str, PersonEntry],
    people: Mapping[str, list[str]],
    person: str,
    crm_manager: str | None = None,
) -> list[str]:
    """`owner_manager` for a deal owned by `person`: their manager as the CRM says
    (`crm_manager`), else in the directory, else the people of `sales_manager` (never
    nobody while that role has people)."""
    if crm_manager:
        return [crm_manager]
    entry = directory.get(person.lower())
    if entry is not None and entry.manager:
        return [entry.manager]
    return list(people.get(OWNER_MANAGER_FALLBACK, []))


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


# -- stand-ins: reassignment and out of office ---------------------------------------
class StandIn(BaseModel):
    """Someone who acts for a person in one handoff: for good (`handoff people reassign`,
    the person left) or until a date (`handoff people away`, with a delegate)."""

    to: str
    until: datetime | None = None
    by: str
    reason: str

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


#: Roles that may move people's work (reassign, or set someone else's absence).
PEOPLE_ADMINS = ("sales_ops",)
#: A stand-in of a stand-in is followed this many times at most (a cycle stops there).
MAX_STAND_IN_HOPS = 5


def stand_in_for(person: str, stand_ins: Mapping[str, StandIn], now: datetime) -> str:
    """Who acts for `person` now (themselves when nobody stands in)."""
    for _ in range(MAX_STAND_IN_HOPS):
        current = stand_ins.get(person)
        if current is None or not current.active(now):
            break
        person = current.to
    return person


def with_stand_ins(
    people: Iterable[str], stand_ins: Mapping[str, StandIn], now: datetime
) -> list[str]:
    """`people` with each replaced by who acts for them now, in order, without repeats."""
    out: list[str] = []
    for person in people:
        acting = stand_in_for(person, stand_ins, now)
        if acting not in out:
            out.append(acting)
    return out

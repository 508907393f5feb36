"""Who manages a deal's owner, as the CRM says (the role `owner_manager`).

- Salesforce: `User.ManagerId`, read as `Manager.Email` in one SOQL query per owner.
- HubSpot: the owners API (`/crm/v3/owners`) has no manager field; each owner lists
  `teams` (`id`, `name`, `primary`), and no team member is flagged as its lead. So the
  HubSpot connector answers with the owner's primary team (`team_of`), and the policy's
  `team_managers` map names who manages each team (see `workflows/policy_people.py`).

A connector without these reads answers nothing, and the policy decides alone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

#: An email or team name longer than this in a CRM answer is not one (bounded input).
MAX_NAME = 254


@runtime_checkable
class ManagerReader(Protocol):
    """A connector that can say who manages an owner (and in which team they are)."""

    def manager_of(self, owner_email: str) -> str | None:
        """The email of `owner_email`'s manager in the CRM, or None (no manager field,
        no manager set, or no such user)."""
        ...

    def team_of(self, owner_email: str) -> str | None:
        """The name of `owner_email`'s primary team in the CRM, or None."""
        ...


class OwnerRef(BaseModel):
    """Input of `crm.owner_manager`: the deal owner's email."""

    owner_email: str = Field(max_length=MAX_NAME)


class OwnerManager(BaseModel):
    """What the CRM says about an owner's manager: a manager's email, and/or a team."""

    owner_email: str
    manager: str | None = None
    team: str | None = None


def clean_email(value: object) -> str | None:
    """A CRM's email value, lower-cased, or None when empty or not an email."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if not text or len(text) > MAX_NAME or "@" not in text or any(c.isspace() for c in text):
        return None
    return text

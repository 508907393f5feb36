"""Salesforce users by email and by id, for OwnerId: one query for every active user
on first use, then one query per miss; both directions cached per connector."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from simple_salesforce.format import format_soql

from connectors.errors import Rejected
from connectors.managers import clean_email
from connectors.salesforce_wire import CRM

if TYPE_CHECKING:
    from connectors.salesforce import SalesforceConnector


class UserDirectory:
    """Active users' ids by email and emails by id, as Salesforce holds them."""

    def __init__(self, connector: SalesforceConnector) -> None:
        self._c = connector
        self._lock = threading.Lock()
        self._user_ids: dict[str, str] = {}
        self._user_emails: dict[str, str] = {}
        self._users_listed = False
        self._managers: dict[str, str | None] = {}  # email → manager's email (None: none)

    def id_for(self, email: str) -> str:
        """The active User with this email (cached). The first look-up reads every active
        user (up to 2,000, one query) into the cache; a miss is then asked alone."""
        if not self._users_listed:
            self._list_users()
        with self._lock:
            cached = self._user_ids.get(email.lower())
        if cached:
            return cached
        soql = format_soql(
            "SELECT Id FROM User WHERE Email = {} AND IsActive = true LIMIT 1", email
        )
        rows = self._c._call("User", "", lambda sf: sf.query(soql)["records"])
        if not rows:
            raise Rejected(
                f"no active Salesforce user has the email {email!r}", crm=CRM, object_type="User"
            )
        with self._lock:
            self._user_ids[email.lower()] = rows[0]["Id"]
        return str(rows[0]["Id"])

    def _list_users(self) -> None:
        soql = "SELECT Id, Email FROM User WHERE IsActive = true ORDER BY Id LIMIT 2000"
        rows = self._c._call("User", "", lambda sf: sf.query(soql)["records"])
        with self._lock:
            for row in rows:
                if row.get("Email"):
                    self._user_ids[str(row["Email"]).lower()] = str(row["Id"])
                    self._user_emails[str(row["Id"])] = str(row["Email"])
            self._users_listed = True

    def email_of(self, user_id: str) -> str:
        """The email of the User `user_id` ("" when none): every active user is read once
        (the first look-up either way), then one query per id not among them."""
        if not user_id:
            return ""
        if not self._users_listed:
            self._list_users()
        with self._lock:
            cached = self._user_emails.get(user_id)
        if cached is None:
            soql = format_soql("SELECT Id, Email FROM User WHERE Id = {}", user_id)
            rows = self._c._call("User", user_id, lambda sf: sf.query(soql)["records"])
            cached = str(rows[0]["Email"]) if rows else ""
            with self._lock:
                self._user_emails[user_id] = cached
        return cached

    def manager_of(self, email: str) -> str | None:
        """The email of the manager (`User.ManagerId`) of the active user with `email`,
        or None: one query per person, through the `Manager` relationship, cached."""
        key = email.strip().lower()
        if not key:
            return None
        with self._lock:
            if key in self._managers:
                return self._managers[key]
        soql = format_soql(
            "SELECT Id, ManagerId, Manager.Email FROM User WHERE Email = {} AND IsActive = true "
            "LIMIT 1",
            key,
        )
        rows = self._c._call("User", "", lambda sf: sf.query(soql)["records"])
        manager = rows[0].get("Manager") if rows else None
        found = clean_email(manager.get("Email")) if isinstance(manager, dict) else None
        with self._lock:
            self._managers[key] = found
        return found

"""The Salesforce connector: Handoff's `CrmConnector` over simple-salesforce.

Deals are Opportunities. Tasks and Orders are upserted by the external id
``Handoff_Key__c``, so repeating a write with the same key changes nothing. Notes are
timeline entries logged as completed Tasks (``Handoff_Kind__c = 'note'``): a real org
allows no custom fields, hence no idempotency key, on classic ``Note``. A stage's notes
The change feed is SOQL on
``SystemModstamp`` ordered by (SystemModstamp, Id), with a cursor that holds both, and
marks rows last modified by the connector's own API user as echoes. A write-back is one
composite request, conditional on the ``LastModifiedDate`` Handoff's previous write left
(If-Unmodified-Since; a read and compare first only without one, or after a 412: see
`connectors.salesforce_writes`); tasks are assigned with ``OwnerId`` (the User found by
``Email``, cached).

simple-salesforce has no retry or backoff, so this module adds them: row locks and 5xx
are retried with jittered exponential backoff, and calls slow down as
``Sforce-Limit-Info`` approaches the daily allocation. Every SDK and transport error is
translated once, in `salesforce_wire.translate`, into `connectors.errors`; a ``KeyError``,
``TypeError`` or ``AttributeError`` raised by our own code propagates unchanged.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.format import format_soql

from connectors import salesforce_lines
from connectors import salesforce_wire as wire
from connectors.base import (
    BillingDocument,
    ChangePage,
    Deal,
    DealChange,
    FieldValue,
    NoteSpec,
    TaskSpec,
    WriteBack,
    WriteReceipt,
)
from connectors.errors import CrmError, RecordLocked, Rejected, TransientCrmError, Unavailable
from connectors.lines import QuoteLines
from connectors.mapping import FieldMapping
from connectors.salesforce_auth import LoginHostAdapter, SalesforceAuth
from connectors.salesforce_users import UserDirectory
from connectors.salesforce_writes import SalesforceWrites

__all__ = ["DEFAULT_MAPPING", "LoginHostAdapter", "SalesforceAuth", "SalesforceConnector"]
log = structlog.get_logger(__name__)
T = TypeVar("T")
CRM = wire.CRM
KEY_FIELD = "Handoff_Key__c"
NOTE_KIND_FIELD = "Handoff_Kind__c"  # marks a Task that is a timeline entry
LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")

CUSTOM_FIELDS = """scope start_date site_notes primary_contact promised billing_contact cost
    contract_end_date handoff_stage handoff_status handoff_owner handoff_due_at
    approved_discount real_margin handoff_key need_confirmed budget_confirmed
    decision_maker_identified timeline_confirmed"""
DEFAULT_MAPPING = FieldMapping(
    fields={
        "name": "Name",
        "crm_stage": "StageName",
        "amount": "Amount",
        "discount_percent": "Discount_Percent__c",
        "owner_email": "OwnerId",
        # Custom fields named after the canonical name: start_date → Start_Date__c.
        **{name: f"{name.title()}__c" for name in CUSTOM_FIELDS.split()},
        "po_number": "PO_Number__c",
    },
    stages={
        "new": "Prospecting",
        "qualified": "Qualification",
        "negotiation": "Negotiation/Review",
        "closed_won": "Closed Won",
        "closed_lost": "Closed Lost",
    },
)


class SalesforceConnector:
    """Handoff's Salesforce connector: Opportunities, Tasks, Notes and Orders."""

    crm = CRM

    def __init__(
        self,
        auth: SalesforceAuth,
        *,
        login_host: str | None = None,
        ca_file: Path | str | None = None,
        field_mapping: Mapping[str, str] | None = None,
        api_version: str = "59.0",
        max_retries: int = 4,
        backoff_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        slow_down_at: float = 0.9,
        slow_down_s: float = 1.0,
        settle_s: float = 1.0,
        timeout_s: float = 30.0,
        api_user_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = auth
        self.mapping = DEFAULT_MAPPING.overridden(field_mapping)
        self.api_version = api_version
        self.max_retries, self.backoff_s, self.backoff_cap_s = max_retries, backoff_s, backoff_cap_s
        self.slow_down_at, self.slow_down_s = slow_down_at, slow_down_s
        self.settle_s = settle_s
        self._sleep = sleep
        self._local = threading.local()
        self._rng = random.Random()
        self._session = requests.Session()
        self._session.mount("https://", LoginHostAdapter(login_host, timeout_s))
        if ca_file is not None:
            self._session.verify = str(ca_file)
            self._session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self._session.hooks["response"].append(self._observe_limits)
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None
        self._api_user_id = api_user_id
        self._users = UserDirectory(self)
        self.api_usage: tuple[int, int] | None = None
        self._writes = SalesforceWrites(self)

    def close(self) -> None:
        """Release the HTTP connections (the connector logs in again if used afterwards)."""
        self._session.close()

    # -- reads ---------------------------------------------------------------------------
    def get_deal(self, deal_id: str) -> Deal:
        fields = ",".join(sorted({"Id", "LastModifiedDate", *self.mapping.fields.values()}))
        record = self._call(
            "Opportunity",
            deal_id,
            lambda sf: wire.sobject(sf, "Opportunity").get(deal_id, params={"fields": fields}),
        )
        return self._deal(record)

    def get_line_items(self, deal_id: str) -> QuoteLines:
        """The opportunity's products (`connectors.salesforce_lines`)."""
        return salesforce_lines.read_lines(self, deal_id)

    def read_changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        """Changes after `cursor`, oldest first, at most 2,000 per page.

        SystemModstamp has one-second precision. A page only takes changes from seconds
        that had closed (by the server's ``Date``, less `settle_s`) when the query ran,
        so no later write can still land in them. The cursor holds the last timestamp
        and the ids delivered at it; the next page skips exactly those. A page boundary
        inside a second therefore neither repeats nor misses a change.
        """
        since, delivered = wire.parse_cursor(cursor)
        fields = sorted({"Id", "SystemModstamp", "LastModifiedById", *self.mapping.fields.values()})
        where = ""
        if since is not None:
            where = format_soql(
                " WHERE (SystemModstamp > {ts:literal} OR "
                "(SystemModstamp = {ts:literal} AND Id NOT IN {ids}))",
                ts=wire.soql_datetime(since),
                ids=sorted(delivered) or [""],
            )
        size = max(1, min(int(limit), 2000))
        # Field names come from the mapping; values went through format_soql.
        select = f"SELECT {', '.join(fields)} FROM Opportunity"  # noqa: S608
        soql = f"{select}{where} ORDER BY SystemModstamp ASC, Id ASC LIMIT {size}"
        rows, server_now = self._call(
            "Opportunity", "", lambda sf: (sf.query(soql)["records"], self._server_time())
        )
        horizon = server_now.replace(microsecond=0) - timedelta(seconds=self.settle_s)
        stamped = [(wire.parse_datetime(row["SystemModstamp"]), row) for row in rows]
        closed = [(at, row) for at, row in stamped if at < horizon]
        done = len(rows) < size or len(closed) < len(stamped)
        if not closed:
            return ChangePage(changes=[], cursor=cursor, done=True)
        own = self._own_user_id()
        changes = [
            DealChange(
                deal_id=row["Id"],
                changed_at=at,
                fields=self._canonical(row),
                by_handoff=row.get("LastModifiedById") == own,
                changed_by=self._users.email_of(str(row.get("LastModifiedById") or "")) or None,
            )
            for at, row in closed
        ]
        last_at = closed[-1][0]
        at_last = {str(r["Id"]) for at, r in closed if at == last_at}
        if last_at == since:
            at_last |= delivered
        next_cursor = f"{last_at.isoformat()}|{','.join(sorted(at_last))}"
        return ChangePage(changes=changes, cursor=next_cursor, done=done)

    # -- writes --------------------------------------------------------------------------
    def update_deal(self, deal_id: str, fields: dict[str, FieldValue], *, key: str) -> None:
        props = self._to_crm(fields)
        if props:
            self._call(
                "Opportunity",
                deal_id,
                lambda sf: wire.sobject(sf, "Opportunity").update(deal_id, props),
            )

    def add_note(self, deal_id: str, note: NoteSpec) -> str:
        return self._upsert("Task", deal_id, note.key, self._note(deal_id, note))

    def create_task(self, deal_id: str, task: TaskSpec) -> str:
        return self._upsert("Task", deal_id, task.key, self._task(deal_id, task))

    def create_billing_document(self, deal_id: str, doc: BillingDocument) -> str:
        opp = self._call(
            "Opportunity",
            deal_id,
            lambda sf: wire.sobject(sf, "Opportunity").get(
                deal_id, params={"fields": "Id,AccountId"}
            ),
        )
        if not opp.get("AccountId"):
            raise Rejected(
                "an Order needs the opportunity's AccountId, which is empty",
                crm=CRM,
                object_type="Opportunity",
                record_id=deal_id,
            )
        order = {
            "Name": doc.title[:80],
            "AccountId": opp["AccountId"],
            "OpportunityId": opp["Id"],
            "EffectiveDate": date.today().isoformat(),
            "Status": "Draft",
            "Amount__c": doc.amount,
            "Currency__c": doc.currency,
            "Payment_Terms_Days__c": doc.payment_terms_days,
            "Description": doc.title,
        }
        return self._upsert("Order", deal_id, doc.key, order)

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        """One composite request: the fields PATCH (conditional when `expected` names
        fields), the notes and tasks upserted by key, earlier tasks completed or moved."""
        return self._writes.write_back(batch)

    # -- record shapes -------------------------------------------------------------------
    def _note(self, deal_id: str, note: NoteSpec) -> dict[str, Any]:
        """A timeline entry as a completed Task: a real org allows no custom fields (so no
        idempotency key) on classic Note."""
        title = (note.body.strip().splitlines() or ["Handoff note"])[0][:255]
        return {
            "Subject": title,
            "Description": note.body,
            "WhatId": deal_id,
            "Status": "Completed",
            "ActivityDate": date.today().isoformat(),
            NOTE_KIND_FIELD: "note",
        }

    def _task(self, deal_id: str, task: TaskSpec) -> dict[str, Any]:
        record: dict[str, Any] = {
            "Subject": task.subject[:255],
            "Description": task.body,
            "OwnerId": self._user_id(task.owner_email),
            "WhatId": deal_id,
            "Status": "Not Started",
        }
        if task.due_at is not None:
            due = task.due_at if task.due_at.tzinfo else task.due_at.replace(tzinfo=UTC)
            record |= {
                "ActivityDate": due.date().isoformat(),
                "IsReminderSet": True,
                "ReminderDateTime": due.astimezone(UTC).isoformat(),
            }
        return record

    def _deal(self, record: Mapping[str, Any]) -> Deal:
        canonical = self._canonical(record)
        amount, discount = canonical.pop("amount", None), canonical.pop("discount_percent", None)
        return Deal(
            id=str(record["Id"]),
            name=canonical.pop("name", ""),
            crm_stage=canonical.pop("crm_stage", ""),
            amount=None if amount is None else float(amount),
            discount_percent=None if discount is None else float(discount),
            owner_email=canonical.pop("owner_email", ""),
            fields=canonical,
            updated_at=wire.parse_datetime(record["LastModifiedDate"])
            if record.get("LastModifiedDate")
            else None,
        )

    def describe(self, sobject: str) -> dict[str, Any]:
        """The sObject's describe, as the integration user sees it (field-level security
        hides fields it may not read; `createable`/`updateable` say what it may write)."""
        described = self._call(sobject, "", lambda sf: wire.sobject(sf, sobject).describe())
        return dict(described)

    def create_deal(
        self, fields: Mapping[str, FieldValue], close_date: str, account_name: str | None = None
    ) -> str:
        """Create an Opportunity from canonical fields, under the Account named
        `account_name` if there is one (an Order needs it); its new id (the demo's deal)."""
        props = {**self._to_crm(fields), "CloseDate": close_date}
        if account_name:
            soql = format_soql("SELECT Id FROM Account WHERE Name = {} LIMIT 1", account_name)
            rows = self._call("Account", "", lambda sf: sf.query(soql)["records"])
            if rows:
                props["AccountId"] = str(rows[0]["Id"])
        created = self._call(
            "Opportunity", "", lambda sf: wire.sobject(sf, "Opportunity").create(props)
        )
        return str(created["id"])

    def _canonical(self, record: Mapping[str, Any]) -> dict[str, str]:
        props = {k: str(v).lower() if isinstance(v, bool) else v for k, v in record.items()}
        if self.mapping.fields.get("owner_email") == "OwnerId" and record.get("OwnerId"):
            props["OwnerId"] = self._user_email(str(record["OwnerId"]))
        return self.mapping.from_crm(props)

    def _to_crm(self, fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
        props = self.mapping.to_crm(fields)
        owner = fields.get("owner_email")
        if self.mapping.fields.get("owner_email") == "OwnerId" and isinstance(owner, str):
            props["OwnerId"] = self._user_id(owner)
        return props

    # -- users ---------------------------------------------------------------------------
    def manager_of(self, owner_email: str) -> str | None:
        """The owner's manager in Salesforce (`User.ManagerId`), or None."""
        return self._users.manager_of(owner_email)

    def team_of(self, owner_email: str) -> str | None:
        """None: Salesforce names the manager itself (`manager_of`)."""
        return None

    def _user_id(self, email: str) -> str:
        return self._users.id_for(email)

    def _user_email(self, user_id: str) -> str:
        return self._users.email_of(user_id)

    def _own_user_id(self) -> str:
        if self._api_user_id is None:
            info = self._call("User", "", lambda sf: sf.oauth2("userinfo") or {})
            self._api_user_id = str(info["user_id"])
        return self._api_user_id

    # -- upserts -------------------------------------------------------------------------
    def _upsert(self, obj: str, deal_id: str, key: str, record: dict[str, Any]) -> str:
        path = f"{KEY_FIELD}/{quote(key, safe='')}"

        def call(sf: Salesforce) -> str:
            response = wire.sobject(sf, obj).upsert(path, record, raw_response=True)
            if response.status_code == 204:  # APIs before v46 answer updates without a body
                return str(wire.sobject(sf, obj).get_by_custom_id(KEY_FIELD, key)["Id"])
            return str(response.json()["id"])

        return self._call(obj, deal_id, call)

    # -- the boundary: retries, pacing, error translation ---------------------------------
    def _client(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = Salesforce(
                    session=self._session, version=self.api_version, **self.auth.client_kwargs()
                )
            return self._sf

    def _call(self, obj: str, record_id: str, fn: Callable[[Salesforce], T]) -> T:
        attempt = 0
        while True:
            self._pace()
            try:
                return fn(self._client())
            except TransientCrmError as exc:
                error: CrmError = exc
            except CrmError:
                raise
            except SalesforceExpiredSession as exc:
                if attempt >= self.max_retries:
                    raise wire.translate(exc, obj, record_id) from exc
                log.info("salesforce_session_expired", object=obj, attempt=attempt + 1)
                with self._lock:
                    self._sf = None  # the next attempt logs in anew
                attempt += 1
                continue
            except (SalesforceError, requests.RequestException) as exc:
                error = wire.translate(exc, obj, record_id)
                error.__cause__ = exc
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                if not wire.raised_by_client(exc):
                    raise  # a bug in our own code, never a "CRM refused"
                error = wire.translate(exc, obj, record_id)
                error.__cause__ = exc
            retryable = isinstance(error, RecordLocked | Unavailable)
            if not retryable or attempt >= self.max_retries:
                raise error
            delay = min(self.backoff_cap_s, self.backoff_s * 2**attempt)
            delay = delay / 2 + self._rng.uniform(0, delay / 2)
            log.warning(
                "salesforce_retry",
                object=obj,
                record_id=record_id,
                error=type(error).__name__,
                attempt=attempt + 1,
                delay_s=round(delay, 3),
            )
            self._sleep(delay)
            attempt += 1

    def _pace(self) -> None:
        usage = self.api_usage
        if usage and usage[1] and usage[0] / usage[1] >= self.slow_down_at:
            log.info("salesforce_slow_down", used=usage[0], allocation=usage[1])
            self._sleep(self.slow_down_s)

    def _server_time(self) -> datetime:
        """The ``Date`` of this thread's latest Salesforce response (else the local clock)."""
        seen: datetime | None = getattr(self._local, "server_time", None)
        return seen or datetime.now(UTC)

    def _observe_limits(self, response: requests.Response, *_: Any, **__: Any) -> None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self._local.server_time = parsedate_to_datetime(response.headers["Date"])
        match = LIMIT_RE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

"""The Salesforce connector: Handoff's `CrmConnector` over simple-salesforce.

Deals are Opportunities. Tasks and Orders are upserted by the external id
``Handoff_Key__c``, so repeating a write with the same key changes nothing. Notes are
timeline entries logged as completed Tasks (``Handoff_Kind__c = 'note'``): a real org
allows no custom fields, hence no idempotency key, on classic ``Note``. A stage's notes
and tasks go out as one sObject Collection upsert. The change feed is SOQL on
``SystemModstamp`` ordered by (SystemModstamp, Id), with a cursor that holds both, and
marks rows last modified by the connector's own API user as echoes.

simple-salesforce has no retry or backoff, so this module adds them: row locks and 5xx
are retried with jittered exponential backoff, and calls slow down as
``Sforce-Limit-Info`` approaches the daily allocation. Every SDK and transport error is
translated once, in `_translate`, into `connectors.errors`; a ``KeyError``,
``TypeError`` or ``AttributeError`` raised by our own code propagates unchanged.
"""

from __future__ import annotations

import contextlib
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import structlog
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

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
from connectors.errors import (
    AuthFailed,
    CrmError,
    NotFound,
    RateLimited,
    RecordLocked,
    Rejected,
    TransientCrmError,
    Unavailable,
)
from connectors.mapping import FieldMapping

log = structlog.get_logger(__name__)
T = TypeVar("T")
CRM = "salesforce"
KEY_FIELD = "Handoff_Key__c"
NOTE_KIND_FIELD = "Handoff_Kind__c"  # marks a Task that is a timeline entry
COLLECTION_LIMIT = 200
LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")
PARENT_FIELDS = {"WhatId", "ParentId", "OpportunityId"}
CLIENT_PACKAGES = {"simple_salesforce", "requests", "urllib3"}

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


class SalesforceAuth(BaseModel):
    """How to log in. Secrets are `SecretStr` and never logged.

    - ``client_credentials``: consumer_key, consumer_secret and a My Domain ``domain``
      (for example ``acme.my``; Salesforce refuses this flow on ``login``/``test``).
    - ``jwt_bearer``: username, consumer_key and private_key_file or private_key.
    - ``password``: username, password and security_token (SOAP partner login), or with
      consumer_key and consumer_secret the OAuth password grant.
    - ``session``: a session_id and the instance_url it belongs to (no re-login possible).
    """

    model_config = ConfigDict(frozen=True)

    mode: Literal["client_credentials", "jwt_bearer", "password", "session"]
    domain: str = "login"
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key_file: Path | None = None
    private_key: SecretStr | None = None
    session_id: SecretStr | None = None
    instance_url: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> SalesforceAuth:
        needs = {
            "client_credentials": ("consumer_key", "consumer_secret"),
            "jwt_bearer": ("username", "consumer_key"),
            "password": ("username", "password"),
            "session": ("session_id", "instance_url"),
        }[self.mode]
        missing = [name for name in needs if getattr(self, name) is None]
        if self.mode == "jwt_bearer" and self.private_key_file is None and not self.private_key:
            missing.append("private_key_file or private_key")
        if self.mode == "client_credentials" and self.domain in ("login", "test"):
            missing.append("domain (a My Domain such as 'acme.my', not login/test)")
        if missing:
            raise ValueError(f"Salesforce auth mode {self.mode!r} needs: {', '.join(missing)}")
        return self

    def client_kwargs(self) -> dict[str, Any]:
        """The simple-salesforce constructor arguments for this mode."""

        def secret(value: SecretStr | None) -> str | None:
            return None if value is None else value.get_secret_value()

        if self.mode == "session":
            return {"session_id": secret(self.session_id), "instance_url": self.instance_url}
        kw: dict[str, Any] = {"domain": self.domain, "consumer_key": self.consumer_key}
        if self.mode == "client_credentials":
            return kw | {"consumer_secret": secret(self.consumer_secret)}
        if self.mode == "jwt_bearer":
            key = {"privatekey_file": str(self.private_key_file)} if self.private_key_file else {}
            return kw | {"username": self.username, "privatekey": secret(self.private_key)} | key
        kw |= {"username": self.username, "password": secret(self.password)}
        if self.consumer_key:
            return kw | {"consumer_secret": secret(self.consumer_secret)}
        return kw | {"security_token": secret(self.security_token) or ""}


class LoginHostAdapter(HTTPAdapter):
    """Sends login calls (hard-coded to ``https://{domain}.salesforce.com``) to `login_host`.

    Only the host changes: the scheme stays https and certificates are still verified.
    Every request also gets a default timeout, which simple-salesforce never sets.
    """

    def __init__(self, login_host: str | None, timeout_s: float) -> None:
        super().__init__()
        self.login_host, self.timeout_s = login_host, timeout_s

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        if self.login_host and (url.hostname or "").endswith(".salesforce.com"):
            request.url = urlunsplit(url._replace(netloc=self.login_host))
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


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
        self._user_ids: dict[str, str] = {}
        self._user_emails: dict[str, str] = {}
        self.api_usage: tuple[int, int] | None = None

    def close(self) -> None:
        """Release the HTTP connections (the connector logs in again if used afterwards)."""
        self._session.close()

    # -- reads ---------------------------------------------------------------------------
    def get_deal(self, deal_id: str) -> Deal:
        fields = ",".join(sorted({"Id", "LastModifiedDate", *self.mapping.fields.values()}))
        record = self._call(
            "Opportunity",
            deal_id,
            lambda sf: _sobject(sf, "Opportunity").get(deal_id, params={"fields": fields}),
        )
        return self._deal(record)

    def read_changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        """Changes after `cursor`, oldest first, at most 2,000 per page.

        SystemModstamp has one-second precision. A page only takes changes from seconds
        that had closed (by the server's ``Date``, less `settle_s`) when the query ran,
        so no later write can still land in them. The cursor holds the last timestamp
        and the ids delivered at it; the next page skips exactly those. A page boundary
        inside a second therefore neither repeats nor misses a change.
        """
        since, delivered = _parse_cursor(cursor)
        fields = sorted({"Id", "SystemModstamp", "LastModifiedById", *self.mapping.fields.values()})
        where = ""
        if since is not None:
            where = format_soql(
                " WHERE (SystemModstamp > {ts:literal} OR "
                "(SystemModstamp = {ts:literal} AND Id NOT IN {ids}))",
                ts=_soql_datetime(since),
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
        stamped = [(_parse_datetime(row["SystemModstamp"]), row) for row in rows]
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
                lambda sf: _sobject(sf, "Opportunity").update(deal_id, props),
            )

    def add_note(self, deal_id: str, note: NoteSpec) -> str:
        return self._upsert("Task", deal_id, note.key, self._note(deal_id, note))

    def create_task(self, deal_id: str, task: TaskSpec) -> str:
        return self._upsert("Task", deal_id, task.key, self._task(deal_id, task))

    def create_billing_document(self, deal_id: str, doc: BillingDocument) -> str:
        opp = self._call(
            "Opportunity",
            deal_id,
            lambda sf: _sobject(sf, "Opportunity").get(deal_id, params={"fields": "Id,AccountId"}),
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
        """One PATCH for the fields, then one collection upsert per object type."""
        if batch.fields:
            self.update_deal(batch.deal_id, batch.fields, key=batch.key)
        notes = [self._note(batch.deal_id, n) | {KEY_FIELD: n.key} for n in batch.notes]
        tasks = [self._task(batch.deal_id, t) | {KEY_FIELD: t.key} for t in batch.tasks]
        ids = self._upsert_many("Task", batch.deal_id, notes + tasks)
        return WriteReceipt(
            deal_id=batch.deal_id, note_ids=ids[: len(notes)], task_ids=ids[len(notes) :]
        )

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
            updated_at=_parse_datetime(record["LastModifiedDate"])
            if record.get("LastModifiedDate")
            else None,
        )

    def describe(self, sobject: str) -> dict[str, Any]:
        """The sObject's describe, as the integration user sees it (field-level security
        hides fields it may not read; `createable`/`updateable` say what it may write)."""
        described = self._call(sobject, "", lambda sf: _sobject(sf, sobject).describe())
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
            "Opportunity", "", lambda sf: _sobject(sf, "Opportunity").create(props)
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
    def _user_id(self, email: str) -> str:
        with self._lock:
            cached = self._user_ids.get(email.lower())
        if cached:
            return cached
        soql = format_soql(
            "SELECT Id FROM User WHERE Email = {} AND IsActive = true LIMIT 1", email
        )
        rows = self._call("User", "", lambda sf: sf.query(soql)["records"])
        if not rows:
            raise Rejected(
                f"no active Salesforce user has the email {email!r}", crm=CRM, object_type="User"
            )
        with self._lock:
            self._user_ids[email.lower()] = rows[0]["Id"]
        return str(rows[0]["Id"])

    def _user_email(self, user_id: str) -> str:
        with self._lock:
            cached = self._user_emails.get(user_id)
        if cached is None:
            soql = format_soql("SELECT Id, Email FROM User WHERE Id = {}", user_id)
            rows = self._call("User", user_id, lambda sf: sf.query(soql)["records"])
            cached = str(rows[0]["Email"]) if rows else ""
            with self._lock:
                self._user_emails[user_id] = cached
        return cached

    def _own_user_id(self) -> str:
        if self._api_user_id is None:
            info = self._call("User", "", lambda sf: sf.oauth2("userinfo") or {})
            self._api_user_id = str(info["user_id"])
        return self._api_user_id

    # -- upserts -------------------------------------------------------------------------
    def _upsert(self, obj: str, deal_id: str, key: str, record: dict[str, Any]) -> str:
        path = f"{KEY_FIELD}/{quote(key, safe='')}"

        def call(sf: Salesforce) -> str:
            response = _sobject(sf, obj).upsert(path, record, raw_response=True)
            if response.status_code == 204:  # APIs before v46 answer updates without a body
                return str(_sobject(sf, obj).get_by_custom_id(KEY_FIELD, key)["Id"])
            return str(response.json()["id"])

        return self._call(obj, deal_id, call)

    def _upsert_many(self, obj: str, deal_id: str, records: list[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = records[start : start + COLLECTION_LIMIT]
            body = {
                "allOrNone": True,
                "records": [{"attributes": {"type": obj}} | r for r in chunk],
            }

            def call(sf: Salesforce, body: dict[str, Any] = body) -> list[str]:
                results = sf.restful(
                    f"composite/sobjects/{obj}/{KEY_FIELD}", method="PATCH", json=body
                )
                return _collection_ids(results, obj, deal_id)

            ids += self._call(obj, deal_id, call)
        return ids

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
            except (SalesforceError, requests.RequestException) as exc:
                error = _translate(exc, obj, record_id)
                error.__cause__ = exc
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                if not _raised_by_client(exc):
                    raise  # a bug in our own code, never a "CRM refused"
                error = _translate(exc, obj, record_id)
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


def _raised_by_client(exc: BaseException) -> bool:
    """Whether `exc` came out of simple-salesforce or requests rather than our own code.

    The innermost frame that is neither the standard library's decides: simple-salesforce
    raises a raw ``KeyError`` on some malformed answers (a 401 body that is not a list),
    which is the CRM's doing; the same error in a connector line is a bug.
    """
    owner = ""
    tb = exc.__traceback__
    while tb is not None:
        top = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
        if top in CLIENT_PACKAGES:
            owner = "client"
        elif top not in sys.stdlib_module_names:
            owner = "ours"
        tb = tb.tb_next
    return owner == "client"


def _sobject(sf: Salesforce, name: str) -> SFType:
    sobject: SFType = getattr(sf, name)
    return sobject


def _collection_ids(results: Any, obj: str, deal_id: str) -> list[str]:
    if not isinstance(results, list):
        raise Rejected(
            "unexpected collection response", crm=CRM, object_type=obj, record_id=deal_id
        )
    errors = [e for r in results for e in r.get("errors") or []]
    if any(e.get("statusCode") == "UNABLE_TO_LOCK_ROW" for e in errors):
        raise RecordLocked(
            "a record in the batch was locked", crm=CRM, object_type=obj, record_id=deal_id
        )
    real = [e for e in errors if e.get("statusCode") != "ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    if errors:
        first = (real or errors)[0]
        message = (
            f"{first.get('statusCode')}: {first.get('message')} (fields {first.get('fields')})"
        )
        raise Rejected(message, crm=CRM, object_type=obj, record_id=deal_id)
    return [str(r["id"]) for r in results]


def _error_code(exc: SalesforceError) -> tuple[str, list[str]]:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), list(content[0].get("fields") or [])
    return "", []


def _translate(exc: Exception, obj: str, record_id: str) -> CrmError:
    """The one place SDK and transport errors become `connectors.errors`."""
    ctx: dict[str, Any] = {"crm": CRM, "object_type": obj, "record_id": record_id}
    if isinstance(exc, SalesforceError):
        code, fields = _error_code(exc)
        status = getattr(exc, "status", None)
        ctx["status"] = status
        message = f"{code or type(exc).__name__}: {_message(exc)}"
        if isinstance(exc, SalesforceExpiredSession | SalesforceAuthenticationFailed):
            return AuthFailed(message, **ctx)
        if isinstance(exc, SalesforceResourceNotFound):
            return NotFound(message, **ctx)
        if code == "UNABLE_TO_LOCK_ROW":
            return RecordLocked(message, **ctx)
        if code == "INVALID_CROSS_REFERENCE_KEY" and PARENT_FIELDS & set(fields):
            return NotFound(message, **ctx)
        if isinstance(exc, SalesforceRefusedRequest):
            if code == "REQUEST_LIMIT_EXCEEDED":
                return RateLimited(message, **ctx)
            return AuthFailed(message, **ctx)
        if isinstance(exc, SalesforceGeneralError) and (status or 0) >= 500:
            return Unavailable(message, **ctx)
        if isinstance(exc, SalesforceMalformedRequest):
            return Rejected(message, **ctx)
        return Rejected(message, **ctx)
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return Unavailable(f"{type(exc).__name__}: cannot reach Salesforce", **ctx)
    return Rejected(f"unexpected response: {type(exc).__name__}: {exc}", **ctx)


def _message(exc: SalesforceError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message", ""))
    if isinstance(exc, SalesforceAuthenticationFailed):
        return str(getattr(exc, "message", "authentication failed"))
    return str(content)[:300]


def _parse_cursor(cursor: str | None) -> tuple[datetime | None, set[str]]:
    """``<ISO timestamp>|<ids delivered at that timestamp, comma-separated>``."""
    if not cursor:
        return None, set()
    stamp, _, ids = cursor.partition("|")
    try:
        return _parse_datetime(stamp), {i for i in ids.split(",") if i}
    except ValueError as exc:
        raise Rejected(f"bad change-feed cursor {cursor!r}", crm=CRM) from exc


def _parse_datetime(text: str) -> datetime:
    value = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", value):
        value = f"{value[:-2]}:{value[-2:]}"
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _soql_datetime(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"

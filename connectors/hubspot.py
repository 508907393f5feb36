"""The HubSpot connector: Handoff's `CrmConnector` over hubspot-api-client (CRM v3/v4).

Notes, tasks and orders carry the unique property ``handoff_key`` and are created with
their deal association in the same batch call; a key that exists already (a retried
write, or one whose response was lost) is read back, never created twice. Field writes
compare first when the caller names what it last saw. See `connectors.hubspot_writes`.
Concurrent deal reads, deal writes, creates and task completions for different deals
share one batch call (group commit, `connectors.hubspot_batching`).

Change feed: CRM search on ``hs_lastmodifieddate`` (milliseconds) ascending; the cursor
is ``<epoch ms>|<ids delivered at that ms>`` so equal timestamps across pages are never
repeated or missed. Echo rule: every deal write also sets ``handoff_last_write`` to
``<client epoch ms> <key>``; a change is ``by_handoff`` when the deal's
``hs_lastmodifieddate`` lies within `echo_window_s` of that stamp. A person's edit made
within that window of a Handoff write is taken for an echo (the workflow still re-reads
the deal on its next step).

hubspot-api-client has no retry of its own (urllib3's is switched off here), so this
module retries 5xx, timeouts and 10-second 429s with jittered exponential backoff,
honours ``Retry-After``, and paces calls to stay under `rate_budget_share` of the
``X-HubSpot-RateLimit-Max`` window. Every SDK and transport error is translated once,
in `translate`, into `connectors.errors`; only those: a ``KeyError``, ``TypeError`` or
``AttributeError`` raised by this module's own code is a bug and propagates unchanged.

Tasks are assigned natively: the owner's email is resolved to ``hubspot_owner_id``
through the owners API (cached per connector), and ``handoff_owner_email`` is kept.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import structlog
from hubspot import HubSpot
from hubspot.crm.objects import (
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from pydantic import SecretStr
from urllib3.util.retry import Retry

from connectors import hubspot_lines
from connectors import hubspot_wire as wire
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
from connectors.errors import AuthFailed, CrmError, NotFound, RateLimited, Unavailable
from connectors.hubspot_wire import CRM, SDK_ERRORS, UnexpectedShape, translate
from connectors.hubspot_writes import HubSpotWrites
from connectors.lines import QuoteLines
from connectors.mapping import FieldMapping

log = structlog.get_logger(__name__)
T = TypeVar("T")
LAST_WRITE_PROPERTY = "handoff_last_write"
MODIFIED = "hs_lastmodifieddate"
SEARCH_LIMIT = 200
CUSTOM_PROPERTIES = """scope start_date site_notes primary_contact promised billing_contact
    po_number cost contract_end_date handoff_stage handoff_status handoff_owner handoff_due_at
    approved_discount real_margin handoff_key need_confirmed budget_confirmed
    decision_maker_identified timeline_confirmed"""
DEFAULT_MAPPING = FieldMapping(
    fields={
        "name": "dealname",
        "crm_stage": "dealstage",
        "amount": "amount",
        "discount_percent": "discount_percent",
        "owner_email": "handoff_owner_email",
        # Custom deal properties are named after the canonical field.
        **{name: name for name in CUSTOM_PROPERTIES.split()},
    },
    stages={
        "new": "appointmentscheduled",
        "qualified": "qualifiedtobuy",
        "negotiation": "presentationscheduled",
        "closed_won": "closedwon",
        "closed_lost": "closedlost",
    },
)


class HubSpotConnector:
    """Handoff's HubSpot connector: deals, notes, tasks and orders."""

    crm = CRM

    def __init__(
        self,
        access_token: SecretStr | str,
        *,
        host: str = "https://api.hubapi.com",
        mapping: Mapping[str, str] | None = None,
        rate_budget_share: float = 0.8,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        timeout_s: float = 30.0,
        echo_window_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < rate_budget_share <= 1:
            raise ValueError("rate_budget_share must be in (0, 1]")
        token = access_token if isinstance(access_token, SecretStr) else SecretStr(access_token)
        self.mapping = DEFAULT_MAPPING.overridden(mapping)
        self.rate_budget_share = rate_budget_share
        self.max_retries, self.backoff_s, self.backoff_cap_s = max_retries, backoff_s, backoff_cap_s
        self.timeout_s, self.echo_window_s = timeout_s, echo_window_s
        self._sleep = sleep
        self._rng = random.Random()
        # urllib3 would silently retry GETs on 429 (and not POSTs); retries are ours.
        client = HubSpot(
            access_token=token.get_secret_value(),
            host=host.rstrip("/"),
            retry=Retry(total=0, redirect=0, raise_on_status=False),
        )
        # Each property access builds a new ApiClient and pool: keep one of each.
        self._basic = client.crm.objects.basic_api
        self._batch = client.crm.objects.batch_api
        self._search = client.crm.objects.search_api
        self._assoc = client.crm.associations.v4.basic_api
        self._owners = client.crm.owners.owners_api
        self._owners_seen: dict[str, wire.Owner | None] = {}  # email → owner (None: none)
        self._owners_lock = threading.Lock()  # activities run in threads: one page read
        self._owners_listed = self._owners_complete = False
        self._writes = HubSpotWrites(self)
        self._pace_lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._window_s, self._max = 10.0, 100  # until the headers say otherwise
        self._remaining: int | None = None
        self.last_limits: dict[str, int] = {}

    def close(self) -> None:
        """Release pooled HTTP connections."""
        for api in (self._basic, self._batch, self._search, self._assoc, self._owners):
            api.api_client.rest_client.pool_manager.clear()

    # -- reads ---------------------------------------------------------------------------
    def get_deal(self, deal_id: str) -> Deal:
        record = self._writes.read(deal_id, {MODIFIED, *self.mapping.fields.values()})
        canonical = self.mapping.from_crm(record[1])
        amount, discount = canonical.pop("amount", None), canonical.pop("discount_percent", None)
        return Deal(
            id=record[0],
            name=canonical.pop("name", ""),
            crm_stage=canonical.pop("crm_stage", ""),
            amount=None if amount is None else float(amount),
            discount_percent=None if discount is None else float(discount),
            owner_email=canonical.pop("owner_email", ""),
            fields=canonical,
            updated_at=record[2],
        )

    def get_line_items(self, deal_id: str) -> QuoteLines:
        """The deal's line items (`connectors.hubspot_lines`)."""
        return hubspot_lines.read_lines(self, deal_id)

    def read_changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        since, delivered = wire.parse_cursor(cursor)
        size = max(1, min(int(limit), SEARCH_LIMIT))
        names = sorted({MODIFIED, LAST_WRITE_PROPERTY, *self.mapping.fields.values()})
        groups = []
        if since is not None:
            flt = Filter(property_name=MODIFIED, operator="GTE", value=str(since))
            groups = [FilterGroup(filters=[flt])]
        offset = 0
        while True:
            body = PublicObjectSearchRequest(
                filter_groups=groups,
                sorts=[MODIFIED],
                properties=names,
                limit=size,
                after=str(offset) if offset else None,
            )
            rows, more = self._call(
                "deals",
                "",
                partial(self._search.do_search_with_http_info, "deals", body, **self._opts()),
                wire.search_page,
            )
            stamped = [(wire.parse_ms(p.get(MODIFIED) or "0"), rid, p) for rid, p in rows]
            fresh = [(at, rid, p) for at, rid, p in stamped if at != since or rid not in delivered]
            if fresh or not more:
                break
            offset += len(rows)  # a full page of already-delivered ids at the cursor's ms
        if not fresh:
            return ChangePage(changes=[], cursor=cursor, done=True)
        changes = [
            DealChange(
                deal_id=rid,
                changed_at=datetime.fromtimestamp(at / 1000, UTC),
                fields=self.mapping.from_crm(p),
                by_handoff=self._is_echo(at, p.get(LAST_WRITE_PROPERTY)),
            )
            for at, rid, p in fresh
        ]
        last = fresh[-1][0]
        at_last = {rid for at, rid, _ in fresh if at == last} | (
            delivered if last == since else set()
        )
        return ChangePage(
            changes=changes, cursor=f"{last}|{','.join(sorted(at_last))}", done=not more
        )

    def _is_echo(self, modified_ms: int, last_write: str | None) -> bool:
        stamp = (last_write or "").partition(" ")[0]
        if not stamp.isdigit():
            return False
        return abs(modified_ms - int(stamp)) <= self.echo_window_s * 1000

    # -- writes --------------------------------------------------------------------------
    def update_deal(self, deal_id: str, fields: dict[str, FieldValue], *, key: str) -> None:
        props = {k: wire.text(v) for k, v in self.mapping.to_crm(fields).items()}
        if not props:
            return
        props[LAST_WRITE_PROPERTY] = f"{int(time.time() * 1000)} {key}"
        self._writes.patch(deal_id, props)

    def create_deal(self, fields: Mapping[str, FieldValue]) -> str:
        """Create a deal from canonical fields; its new id (the demo's fresh deal)."""
        props = {k: wire.text(v) for k, v in self.mapping.to_crm(fields).items()}
        body = SimplePublicObjectInputForCreate(properties=props)
        record = self._call(
            "deals", "", lambda: self._basic.create_with_http_info("deals", body, **self._opts()),
            wire.properties,
        )  # fmt: skip
        return str(record[0])

    def add_note(self, deal_id: str, note: NoteSpec) -> str:
        return self._writes.create_associated(
            "notes", deal_id, [(note.key, self.note_properties(note))]
        )[0]

    def create_task(self, deal_id: str, task: TaskSpec) -> str:
        return self._writes.create_associated(
            "tasks", deal_id, [(task.key, self.task_properties(task))]
        )[0]

    def create_billing_document(self, deal_id: str, doc: BillingDocument) -> str:
        props = {
            "hs_order_name": doc.title[:255],
            "hs_total_price": wire.text(doc.amount),
            "hs_currency_code": doc.currency,
            "handoff_payment_terms_days": str(doc.payment_terms_days),
        }
        return self._writes.create_associated("orders", deal_id, [(doc.key, props)])[0]

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        """Compare, then one PATCH for the fields, one batch create (with the deal
        association) per object type, and one batch read and update for earlier tasks."""
        return self._writes.write_back(batch)

    def note_properties(self, note: NoteSpec) -> dict[str, str]:
        return {"hs_note_body": note.body, "hs_timestamp": wire.iso(datetime.now(UTC))}

    def task_properties(self, task: TaskSpec) -> dict[str, str]:
        props = {
            "hs_task_subject": task.subject[:255],
            "hs_task_body": task.body,
            "hs_timestamp": wire.iso(task.due_at or datetime.now(UTC)),
            "hs_task_status": "NOT_STARTED",
            "handoff_owner_email": task.owner_email,
        }
        owner_id = self.owner_id(task.owner_email)
        if owner_id is not None:
            props["hubspot_owner_id"] = owner_id  # shows in the owner's HubSpot task queue
        return props

    def owner_id(self, email: str) -> str | None:
        """The HubSpot owner id of `email`, or None (a token without the owners scope
        still gets its tasks made, by email only)."""
        try:
            found = self._owner(email)
        except (AuthFailed, NotFound) as exc:
            log.warning("hubspot_owners_unreadable", error=str(exc))
            return None
        if found is None:
            log.warning("hubspot_owner_not_found", email=email)
        return found.id if found else None

    def _owner(self, email: str) -> wire.Owner | None:
        """The owner with `email`, from one cache: the first look-up reads a whole page of
        owners (500); an email not on it is then looked up alone, once."""
        key = email.strip().lower()
        if not key:
            return None
        with self._owners_lock:
            return self._owner_locked(key)

    def _owner_locked(self, key: str) -> wire.Owner | None:
        if key in self._owners_seen:
            return self._owners_seen[key]
        if not self._owners_listed:
            owners, more = self._call(
                "owners",
                "",
                partial(self._owners.get_page_with_http_info, limit=500, **self._opts()),
                wire.owners_page,
            )
            self._owners_seen |= owners
            self._owners_listed, self._owners_complete = True, not more
        if key not in self._owners_seen and not self._owners_complete:
            owners, _ = self._call(
                "owners",
                key,
                partial(self._owners.get_page_with_http_info, email=key, limit=1, **self._opts()),
                wire.owners_page,
            )
            self._owners_seen |= owners
        return self._owners_seen.setdefault(key, None)

    # -- who manages an owner (connectors/managers.py) -------------------------------------
    def manager_of(self, owner_email: str) -> str | None:
        """Always None: HubSpot owners carry no manager; see `team_of`."""
        return None

    def team_of(self, owner_email: str) -> str | None:
        """The owner's primary team (owners API `teams`), from the same cache as
        `owner_id`: one owners page serves both."""
        found = self._owner(owner_email)
        return found.team if found else None

    # -- the boundary: retries, pacing, error translation ---------------------------------
    def _opts(self) -> dict[str, Any]:
        return {"_return_http_data_only": False, "_request_timeout": self.timeout_s}

    def _call(
        self, obj: str, record_id: str, send: Callable[[], Any], parse: Callable[[Any], T]
    ) -> T:
        attempt = 0
        while True:
            self._pace()
            try:
                data, _status, headers = send()
                self._observe(headers)
                return parse(data)
            except (*SDK_ERRORS, UnexpectedShape) as exc:
                self._observe(getattr(exc, "headers", None))
                error = translate(exc, obj, record_id)
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise error from exc
            log.warning(
                "hubspot_retry",
                object=obj,
                record_id=record_id,
                error=type(error).__name__,
                status=error.status,
                attempt=attempt + 1,
                delay_s=round(delay, 3),
            )
            self._sleep(delay)
            attempt += 1

    def _retry_delay(self, error: CrmError, attempt: int) -> float | None:
        if attempt >= self.max_retries or not isinstance(error, RateLimited | Unavailable):
            return None
        if isinstance(error, RateLimited) and error.retry_after is None:
            return None  # the daily limit: retrying today cannot help
        delay = min(self.backoff_cap_s, self.backoff_s * 2.0**attempt)
        delay = delay / 2 + self._rng.uniform(0, delay / 2)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    def _pace(self) -> None:
        """Stay under `rate_budget_share` of the window, counting our own calls, and
        slow down when the server's ``Remaining`` says others use the rest."""
        with self._pace_lock:
            now = time.monotonic()
            while self._sent and self._sent[0] <= now - self._window_s:
                self._sent.popleft()
            allowed = max(1, math.floor(self._max * self.rate_budget_share))
            wait = 0.0
            if len(self._sent) >= allowed:
                wait = self._sent[-allowed] + self._window_s - now
            elif self._remaining is not None and self._remaining <= self._max - allowed:
                wait = self._window_s / allowed
            self._sent.append(now + max(0.0, wait))
        if wait > 0:
            log.info("hubspot_slow_down", wait_s=round(wait, 3), remaining=self._remaining)
            self._sleep(wait)

    def _observe(self, headers: Any) -> None:
        if not headers:
            return
        values: dict[str, int] = {}
        for name, raw in dict(headers).items():
            lower = str(name).lower()
            if lower.startswith("x-hubspot-ratelimit-") and str(raw).isdigit():
                values[lower.removeprefix("x-hubspot-ratelimit-")] = int(raw)
        if "max" in values and "remaining" in values:
            with self._pace_lock:
                self._max, self._remaining = max(1, values["max"]), values["remaining"]
                interval = values.get("interval-milliseconds")
                if interval:
                    self._window_s = interval / 1000
        self.last_limits = values

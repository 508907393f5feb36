"""The HubSpot connector: Handoff's `CrmConnector` over hubspot-api-client (CRM v3/v4).

Notes, tasks and orders carry the unique property ``handoff_key``. Each write is a batch
upsert with ``idProperty=handoff_key`` followed by the v4 default association to the
deal, so a repeated write (even one whose first response was lost) finds the same record
and changes nothing. A stage's notes go out as one batch upsert, its tasks as another.

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

import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import structlog
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiError
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiError
from hubspot.crm.owners.exceptions import ApiException as OwnersApiError
from pydantic import SecretStr
from urllib3.util.retry import Retry

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
    Rejected,
    Unavailable,
)
from connectors.mapping import FieldMapping

log = structlog.get_logger(__name__)
T = TypeVar("T")
CRM = "hubspot"
KEY_PROPERTY = "handoff_key"
LAST_WRITE_PROPERTY = "handoff_last_write"
MODIFIED = "hs_lastmodifieddate"
BATCH_LIMIT, SEARCH_LIMIT = 100, 200
#: The HTTP-level errors of the client packages this connector calls. Their other
#: exceptions (ApiTypeError, ApiValueError...) refuse our own arguments: bugs, not CRM errors.
API_ERRORS = (ObjectsApiError, AssociationsApiError, OwnersApiError)
#: Everything the boundary translates: the client's API errors and urllib3's transport
#: errors. A KeyError, TypeError or AttributeError from our own code is not in it.
SDK_ERRORS = (*API_ERRORS, urllib3.exceptions.HTTPError)

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


class UnexpectedShape(ValueError):
    """A 2xx answer whose body is not what the API documents."""


def _text(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    ms = _ms(moment)
    return (
        datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"
    )


def _parse_ms(text: str) -> int:
    if text.strip().isdigit():
        return int(text)
    return _ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


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
        self._owner_ids: dict[str, str | None] = {}  # email → owner id (None: no such owner)
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
        names = sorted({MODIFIED, *self.mapping.fields.values()})
        record = self._call(
            "deals",
            deal_id,
            lambda: self._basic.get_by_id_with_http_info(
                "deals", deal_id, properties=names, archived=False, **self._opts()
            ),
            _properties,
        )
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

    def read_changes(self, cursor: str | None, limit: int = 200) -> ChangePage:
        since, delivered = _parse_cursor(cursor)
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
                _search_page,
            )
            stamped = [(_parse_ms(p.get(MODIFIED) or "0"), rid, p) for rid, p in rows]
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
        props = {k: _text(v) for k, v in self.mapping.to_crm(fields).items()}
        if not props:
            return
        props[LAST_WRITE_PROPERTY] = f"{int(time.time() * 1000)} {key}"
        body = SimplePublicObjectInput(properties=props)
        self._call(
            "deals",
            deal_id,
            lambda: self._basic.update_with_http_info("deals", deal_id, body, **self._opts()),
            _properties,
        )

    def create_deal(self, fields: Mapping[str, FieldValue]) -> str:
        """Create a deal from canonical fields; its new id (the demo's fresh deal)."""
        props = {k: _text(v) for k, v in self.mapping.to_crm(fields).items()}
        body = SimplePublicObjectInputForCreate(properties=props)
        record = self._call(
            "deals", "", lambda: self._basic.create_with_http_info("deals", body, **self._opts()),
            _properties,
        )  # fmt: skip
        return record[0]

    def add_note(self, deal_id: str, note: NoteSpec) -> str:
        return self._upsert_associated("notes", deal_id, [(note.key, self._note(note))])[0]

    def create_task(self, deal_id: str, task: TaskSpec) -> str:
        return self._upsert_associated("tasks", deal_id, [(task.key, self._task(task))])[0]

    def create_billing_document(self, deal_id: str, doc: BillingDocument) -> str:
        props = {
            "hs_order_name": doc.title[:255],
            "hs_total_price": _text(doc.amount),
            "hs_currency_code": doc.currency,
            "handoff_payment_terms_days": str(doc.payment_terms_days),
        }
        return self._upsert_associated("orders", deal_id, [(doc.key, props)])[0]

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        """One PATCH for the fields, one batch upsert for the notes and one for the tasks."""
        if batch.fields:
            self.update_deal(batch.deal_id, batch.fields, key=batch.key)
        notes = [(n.key, self._note(n)) for n in batch.notes]
        tasks = [(t.key, self._task(t)) for t in batch.tasks]
        return WriteReceipt(
            deal_id=batch.deal_id,
            note_ids=self._upsert_associated("notes", batch.deal_id, notes),
            task_ids=self._upsert_associated("tasks", batch.deal_id, tasks),
        )

    def _note(self, note: NoteSpec) -> dict[str, str]:
        return {"hs_note_body": note.body, "hs_timestamp": _iso(datetime.now(UTC))}

    def _task(self, task: TaskSpec) -> dict[str, str]:
        props = {
            "hs_task_subject": task.subject[:255],
            "hs_task_body": task.body,
            "hs_timestamp": _iso(task.due_at or datetime.now(UTC)),
            "handoff_owner_email": task.owner_email,
        }
        owner_id = self.owner_id(task.owner_email)
        if owner_id is not None:
            props["hubspot_owner_id"] = owner_id  # shows in the owner's HubSpot task queue
        return props

    def owner_id(self, email: str) -> str | None:
        """The HubSpot owner id of `email` (owners API, cached per connector), or None."""
        key = email.strip().lower()
        if not key:
            return None
        if key not in self._owner_ids:
            try:
                found = self._call(
                    "owners",
                    key,
                    partial(
                        self._owners.get_page_with_http_info, email=key, limit=1, **self._opts()
                    ),
                    _owner_id,
                )
            except (AuthFailed, NotFound) as exc:
                # No owners scope on this token: the task is still made, by email only.
                log.warning("hubspot_owners_unreadable", error=str(exc))
                found = None
            if found is None:
                log.warning("hubspot_owner_not_found", email=key)
            self._owner_ids[key] = found
        return self._owner_ids[key]

    def _upsert_associated(
        self, ot: str, deal_id: str, items: Iterable[tuple[str, dict[str, str]]]
    ) -> list[str]:
        """Upsert by ``handoff_key`` (100 per call), then associate each to the deal."""
        unique = dict(items)  # a key repeated in one call is one record
        keys, ids = list(unique), dict[str, str]()
        for start in range(0, len(keys), BATCH_LIMIT):
            chunk = keys[start : start + BATCH_LIMIT]
            body = BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(
                        id=k, id_property=KEY_PROPERTY, properties={**unique[k], KEY_PROPERTY: k}
                    )
                    for k in chunk
                ]
            )
            ids |= self._call(
                ot,
                deal_id,
                partial(self._batch.upsert_with_http_info, ot, body, **self._opts()),
                _upserted_ids,
            )
        missing = [k for k in keys if k not in ids]
        if missing:
            raise Rejected(f"upsert returned no record for keys {missing}", crm=CRM, object_type=ot)
        for key in keys:
            self._call(
                "deals",
                deal_id,
                partial(
                    self._assoc.create_default_with_http_info,
                    *(ot, ids[key], "deals", deal_id),
                    **self._opts(),
                ),
                _association,
            )
        return [ids[k] for k in keys]

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


# -- response parsers (a 2xx of the wrong shape raises UnexpectedShape) ----------------
def _properties(data: Any) -> tuple[str, dict[str, str], datetime | None]:
    if data is None or not data.id or not isinstance(data.properties, dict):
        raise UnexpectedShape("an object without id or properties")
    props = {k: v for k, v in data.properties.items() if v is not None}
    return str(data.id), props, data.updated_at


def _association(data: Any) -> None:
    if data is None or not isinstance(data.results, list) or not data.results:
        raise UnexpectedShape("an association answer without results")


def _search_page(data: Any) -> tuple[list[tuple[str, dict[str, str]]], bool]:
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("a search answer without results")
    rows = [_properties(r)[:2] for r in data.results]
    more = bool(data.paging and data.paging.next and data.paging.next.after)
    return rows, more


def _owner_id(data: Any) -> str | None:
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("an owners answer without results")
    if not data.results:
        return None
    owner_id = data.results[0].id
    if not owner_id:
        raise UnexpectedShape("an owner without id")
    return str(owner_id)


def _upserted_ids(data: Any) -> dict[str, str]:
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("a batch answer without results")
    errors = getattr(data, "errors", None)  # only the 207 model has errors
    if errors:
        first = errors[0]
        raise UnexpectedShape(f"batch errors: {first.category}: {first.message}")
    ids: dict[str, str] = {}
    for record in data.results:
        rid, props, _ = _properties(record)
        if KEY_PROPERTY not in props:
            raise UnexpectedShape(f"an upserted record without {KEY_PROPERTY}")
        ids[props[KEY_PROPERTY]] = rid
    return ids


def _retry_after(headers: Any) -> float | None:
    raw = dict(headers or {}).get("Retry-After") or dict(headers or {}).get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _body(exc: Exception) -> dict[str, Any]:
    try:
        parsed = json.loads(getattr(exc, "body", None) or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def translate(exc: Exception, obj: str, record_id: str) -> CrmError:
    """The one place SDK and transport errors become `connectors.errors`."""
    status = getattr(exc, "status", None) if isinstance(exc, API_ERRORS) else None
    ctx: dict[str, Any] = {"crm": CRM, "object_type": obj, "record_id": record_id}
    if isinstance(status, int) and status > 0:
        ctx["status"] = status
        body = _body(exc)
        label = body.get("category") or body.get("errorType") or getattr(exc, "reason", "")
        message = f"{label}: {body.get('message') or 'no message'}"
        if status in (401, 403):
            return AuthFailed(message, **ctx)
        if status == 404:
            return NotFound(message, **ctx)
        if status == 429:
            daily = body.get("policyName") == "DAILY"
            retry_after = None if daily else (_retry_after(exc.headers) or 1.0)  # type: ignore[attr-defined]
            return RateLimited(message, retry_after=retry_after, **ctx)
        if status >= 500:
            return Unavailable(message, **ctx)
        return Rejected(message, **ctx)
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return Unavailable(f"{type(exc).__name__}: cannot reach HubSpot", **ctx)
    reason = str(getattr(exc, "reason", "") or exc)[:300]
    if reason.startswith("SSLError"):
        return Unavailable(f"TLS failure talking to HubSpot: {reason}", **ctx)
    return Rejected(f"unexpected response: {type(exc).__name__}: {reason}", **ctx)


def _parse_cursor(cursor: str | None) -> tuple[int | None, set[str]]:
    """``<epoch ms>|<ids delivered at that ms, comma-separated>``."""
    if not cursor:
        return None, set()
    stamp, _, ids = cursor.partition("|")
    if not stamp.isdigit():
        raise Rejected(f"bad change-feed cursor {cursor!r}", crm=CRM)
    return int(stamp), {i for i in ids.split(",") if i}

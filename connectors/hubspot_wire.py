"""HubSpot on the wire: response parsers, value formats and the one error translation.

A 2xx answer of the wrong shape raises `UnexpectedShape`; `translate` turns the client's
API and transport errors (and only those) into `connectors.errors`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

import urllib3
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiError
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiError
from hubspot.crm.owners.exceptions import ApiException as OwnersApiError

from connectors.base import FieldValue
from connectors.errors import AuthFailed, CrmError, NotFound, RateLimited, Rejected, Unavailable
from connectors.managers import MAX_NAME

CRM = "hubspot"
KEY_PROPERTY = "handoff_key"
#: Inputs one HubSpot batch call (read, create, update) takes at most.
BATCH_LIMIT = 100
#: The HTTP-level errors of the client packages this connector calls. Their other
#: exceptions (ApiTypeError, ApiValueError...) refuse our own arguments: bugs, not CRM errors.
API_ERRORS = (ObjectsApiError, AssociationsApiError, OwnersApiError)
#: Everything the boundary translates: the client's API errors and urllib3's transport
#: errors. A KeyError, TypeError or AttributeError from our own code is not in it.
SDK_ERRORS = (*API_ERRORS, urllib3.exceptions.HTTPError)


class UnexpectedShape(ValueError):
    """A 2xx answer whose body is not what the API documents."""


def text(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def iso(moment: datetime) -> str:
    stamp = ms(moment)
    return (
        datetime.fromtimestamp(stamp // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{stamp % 1000:03d}Z"
    )


def parse_ms(text: str) -> int:
    if text.strip().isdigit():
        return int(text)
    return ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


# -- response parsers (a 2xx of the wrong shape raises UnexpectedShape) ----------------
def properties(data: Any) -> tuple[str, dict[str, str], datetime | None]:
    if data is None or not data.id or not isinstance(data.properties, dict):
        raise UnexpectedShape("an object without id or properties")
    props = {k: v for k, v in data.properties.items() if v is not None}
    return str(data.id), props, data.updated_at


def association(data: Any) -> None:
    if data is None or not isinstance(data.results, list) or not data.results:
        raise UnexpectedShape("an association answer without results")


def search_page(data: Any) -> tuple[list[tuple[str, dict[str, str]]], bool]:
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("a search answer without results")
    rows = [properties(r)[:2] for r in data.results]
    more = bool(data.paging and data.paging.next and data.paging.next.after)
    return rows, more


class Owner(NamedTuple):
    """What Handoff keeps of a HubSpot owner: its id (tasks are assigned to it) and its
    primary team (the team flagged `primary`, else the only one, else None)."""

    id: str
    team: str | None


def owners_page(data: Any) -> tuple[dict[str, Owner], bool]:
    """An owners page: lower-cased email → `Owner`, and whether more pages follow."""
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("an owners answer without results")
    owners: dict[str, Owner] = {}
    for owner in data.results:
        if not owner.id:
            raise UnexpectedShape("an owner without id")
        if not owner.email:
            continue
        listed = [t for t in owner.teams or [] if t is not None and t.name]
        primary = [t for t in listed if t.primary] or (listed if len(listed) == 1 else [])
        team = str(primary[0].name).strip()[:MAX_NAME] if primary else None
        owners[str(owner.email).strip().lower()] = Owner(str(owner.id), team or None)
    more = bool(data.paging and data.paging.next and data.paging.next.after)
    return owners, more


def batch_records(data: Any, *, tolerate_missing: bool) -> list[tuple[str, dict[str, str]]]:
    """The (id, properties) of a batch answer. Any error fails it, except records that do
    not exist (OBJECT_NOT_FOUND) when `tolerate_missing`."""
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("a batch answer without results")
    for error in getattr(data, "errors", None) or []:  # only the 207 model has errors
        if not (tolerate_missing and error.category == "OBJECT_NOT_FOUND"):
            raise UnexpectedShape(f"batch errors: {error.category}: {error.message}")
    return [properties(record)[:2] for record in data.results]


def batch_objects(data: Any) -> dict[str, tuple[str, dict[str, str], datetime | None]]:
    """A batch read or update of records by id: id → (id, properties, updatedAt). Records
    a 207 reports in ``errors`` (any category) are simply absent: the caller settles
    them one by one."""
    if data is None or not isinstance(data.results, list):
        raise UnexpectedShape("a batch answer without results")
    return {record[0]: record for record in map(properties, data.results)}


def records_by_key(data: Any) -> dict[str, tuple[str, dict[str, str]]]:
    """A batch read by ``handoff_key``: key → (id, properties); absent keys left out."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for rid, props in batch_records(data, tolerate_missing=True):
        if KEY_PROPERTY not in props:
            raise UnexpectedShape(f"a record read by key without {KEY_PROPERTY}")
        found[props[KEY_PROPERTY]] = (rid, props)
    return found


def upserted_ids(data: Any) -> dict[str, str]:
    """Created or upserted records: ``handoff_key`` → id."""
    ids: dict[str, str] = {}
    for rid, props in batch_records(data, tolerate_missing=False):
        if KEY_PROPERTY not in props:
            raise UnexpectedShape(f"a written record without {KEY_PROPERTY}")
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


def parse_cursor(cursor: str | None) -> tuple[int | None, set[str]]:
    """``<epoch ms>|<ids delivered at that ms, comma-separated>``."""
    if not cursor:
        return None, set()
    stamp, _, ids = cursor.partition("|")
    if not stamp.isdigit():
        raise Rejected(f"bad change-feed cursor {cursor!r}", crm=CRM)
    return int(stamp), {i for i in ids.split(",") if i}

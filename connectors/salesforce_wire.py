"""Salesforce on the wire: the one error translation, composite answers and value formats.

Only simple-salesforce's and requests' exceptions become `connectors.errors`; the same
``KeyError`` raised by connector code is a bug and propagates (see `raised_by_client`).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Any

import requests
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

from connectors.errors import (
    AuthFailed,
    CrmError,
    NotFound,
    RateLimited,
    RecordLocked,
    Rejected,
    Unavailable,
)

CRM = "salesforce"
PARENT_FIELDS = {"WhatId", "ParentId", "OpportunityId"}
CLIENT_PACKAGES = {"simple_salesforce", "requests", "urllib3"}


def raised_by_client(exc: BaseException) -> bool:
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


def sobject(sf: Salesforce, name: str) -> SFType:
    sobject: SFType = getattr(sf, name)
    return sobject


class PreconditionFailed(Exception):
    """The conditional PATCH of a composite met 412: the record changed since it was read.
    Internal to the connector: the write path reads again instead of failing."""


def composite_bodies(answer: Any, deal_id: str) -> dict[str, Any]:
    """A composite answer: referenceId → body. A failed subrequest raises: 412 as
    `PreconditionFailed`, an ended session as simple-salesforce's own
    `SalesforceExpiredSession` (so the caller logs in again), a row lock as `RecordLocked`,
    a missing deal as `NotFound`, the rest as `Rejected` (PROCESSING_HALTED only echoes
    another subrequest's failure)."""
    ctx: dict[str, Any] = {"crm": CRM, "object_type": "Opportunity", "record_id": deal_id}
    results = answer.get("compositeResponse") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise Rejected("unexpected composite response", **ctx)
    failed: list[tuple[int, dict[str, Any]]] = []
    bodies: dict[str, Any] = {}
    for result in results:
        status, body = int(result.get("httpStatusCode", 0)), result.get("body")
        bodies[str(result.get("referenceId", ""))] = body
        if status >= 300:
            errors = body if isinstance(body, list) else [{"message": str(body)}]
            failed += [(status, e) for e in errors if isinstance(e, dict)]
    real = [(s, e) for s, e in failed if e.get("errorCode") != "PROCESSING_HALTED"]
    if not (real or failed):
        return bodies
    status, first = (real or failed)[0]
    code = str(first.get("errorCode", ""))
    message = f"{code}: {first.get('message')}"
    if code == "INVALID_SESSION_ID":
        # the session ended between subrequests; allOrNone rolled the rest back, so the
        # caller logs in anew and sends the whole composite again
        raise SalesforceExpiredSession("composite", status, "Opportunity", message.encode())
    if code == "PRECONDITION_FAILED" or status == 412:
        raise PreconditionFailed(message)
    if code == "UNABLE_TO_LOCK_ROW":
        raise RecordLocked(message, status=status, **ctx)
    if status == 404 or code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
        raise NotFound(message, status=status, **ctx)
    if code == "INVALID_CROSS_REFERENCE_KEY" and PARENT_FIELDS & set(first.get("fields") or []):
        raise NotFound(message, status=status, **ctx)
    raise Rejected(message, status=status, **ctx)


def _error_code(exc: SalesforceError) -> tuple[str, list[str]]:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), list(content[0].get("fields") or [])
    return "", []


def translate(exc: Exception, obj: str, record_id: str) -> CrmError:
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


def parse_cursor(cursor: str | None) -> tuple[datetime | None, set[str]]:
    """``<ISO timestamp>|<ids delivered at that timestamp, comma-separated>``."""
    if not cursor:
        return None, set()
    stamp, _, ids = cursor.partition("|")
    try:
        return parse_datetime(stamp), {i for i in ids.split(",") if i}
    except ValueError as exc:
        raise Rejected(f"bad change-feed cursor {cursor!r}", crm=CRM) from exc


def parse_datetime(text: str) -> datetime:
    value = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", value):
        value = f"{value[:-2]}:{value[-2:]}"
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def soql_datetime(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"

"""HubSpot webhooks: ``POST /webhooks/hubspot`` with v3 signatures.

The request is refused with 401 unless ``X-HubSpot-Signature-v3`` is the base64
HMAC-SHA256, keyed with the app's client secret, of ``method + full URI + raw body +
X-HubSpot-Request-Timestamp`` and the timestamp (Unix ms) is within five minutes. The
body is a JSON array of events; they are ordered by ``occurredAt``, duplicates (in the
batch, or seen recently by this process) are dropped, and each event becomes one call
on the `WebhookStarter`:

- ``deal.creation``, or ``dealstage`` changing into one of the policy's trigger stages
  → `deal_entered_trigger`;
- a property mapped to a canonical field in ``policy.evidence_fields``, changing to a
  truthy value → `evidence_arrived`;
- any other mapped property → `deal_changed`; unmapped properties and other
  subscription types are ignored (and counted in the answer).

If the starter fails the answer is 503, so HubSpot delivers the batch again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.mapping import FieldMapping
from worker.http.ingress import WebhookStarter
from worker.ids import is_valid_deal_id
from workflows.policy import Policy

log = structlog.get_logger(__name__)
CRM = "hubspot"
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE_MS = 5 * 60 * 1000
DEAL_TYPE_ID = "0-3"
#: Characters HubSpot's docs say to decode in the URI before hashing.
DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def sign_v3(
    secret: str | SecretStr, method: str, uri: str, body: bytes | str, timestamp_ms: int | str
) -> str:
    """The ``X-HubSpot-Signature-v3`` value for a request (base64 HMAC-SHA256)."""
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    raw = body.encode() if isinstance(body, str) else body
    message = method.upper().encode() + uri.encode() + raw + str(timestamp_ms).encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class HubSpotEvent(BaseModel):
    """One webhook event. HubSpot adds fields over time; unknown ones are kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_id: int | str = Field(alias="eventId")
    subscription_type: str = Field(alias="subscriptionType", min_length=1)
    object_id: int | str = Field(alias="objectId")
    occurred_at: int = Field(alias="occurredAt", ge=0)
    property_name: str | None = Field(default=None, alias="propertyName")
    property_value: str | None = Field(default=None, alias="propertyValue")
    object_type_id: str | None = Field(default=None, alias="objectTypeId")
    portal_id: int | None = Field(default=None, alias="portalId")
    attempt_number: int | None = Field(default=None, alias="attemptNumber")
    change_source: str | None = Field(default=None, alias="changeSource")
    source_id: str | None = Field(default=None, alias="sourceId")

    def changed_by(self) -> str | None:
        """The HubSpot user who made the change, when HubSpot names one (``sourceId``
        ``userId:<n>`` for an edit in the CRM): "HubSpot user <n>"; None otherwise."""
        kind, _, user = (self.source_id or "").partition(":")
        return f"HubSpot user {user}" if kind == "userId" and user.isdigit() else None


EVENTS = TypeAdapter(list[HubSpotEvent])
Action = Literal["trigger", "evidence", "changed", "ignored"]


class SeenEvents:
    """A bounded, thread-safe LRU of event ids: claimed before the starter runs, released
    if it fails (so HubSpot's retry is not mistaken for a duplicate)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                self._ids.move_to_end(event_id)
                return False
            self._ids[event_id] = None
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)
            return True

    def release(self, event_id: str) -> None:
        with self._lock:
            self._ids.pop(event_id, None)


def _refuse(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_router(
    *,
    client_secret: SecretStr,
    starter: WebhookStarter,
    policy: Policy | Callable[[], Policy],
    mapping: FieldMapping,
    max_body_bytes: int = 1_000_000,
    clock: Callable[[], float] = time.time,
    public_base_url: str | None = None,
    seen_capacity: int = 10_000,
) -> APIRouter:
    """The ``POST /webhooks/hubspot`` router.

    `mapping` is the HubSpot connector's field mapping (canonical → property, and stage
    ids); `public_base_url` is the scheme and host HubSpot calls when a proxy rewrites
    them (the signature covers the URI HubSpot used). A callable `policy` is asked on
    every event, so trigger stages and evidence fields follow the file as it is edited.
    """
    current = policy if callable(policy) else (lambda: policy)
    router = APIRouter()
    seen = SeenEvents(seen_capacity)
    to_canonical = {prop: name for name, prop in mapping.fields.items()}
    stage_of = {crm_stage: name for name, crm_stage in mapping.stages.items()}

    def classify(event: HubSpotEvent) -> tuple[Action, str, dict[str, str]]:
        kind = event.subscription_type
        now = current()
        is_deal = kind.startswith("deal.") or event.object_type_id == DEAL_TYPE_ID
        if not is_deal:
            return "ignored", "", {}
        if kind.endswith(".creation"):
            return "trigger", "", {}
        if not kind.endswith(".propertyChange"):
            return "ignored", "", {}
        canonical = to_canonical.get(event.property_name or "")
        value = event.property_value or ""
        if canonical is None:
            return "ignored", "", {}
        if canonical == "crm_stage":
            stage = stage_of.get(value, value)
            if stage in now.trigger_crm_stages:
                return "trigger", "", {}
            return "changed", "", {"crm_stage": stage}
        kinds = now.evidence_in_fields({canonical: value})
        if kinds:
            return "evidence", kinds[0], {}
        return "changed", "", {canonical: value}

    def verify(request: Request, body: bytes) -> tuple[str, str] | None:
        """None when the signature and timestamp hold, else (error, detail)."""
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not stamp.isdigit():
            return ("invalid_timestamp", f"{TIMESTAMP_HEADER} must be Unix ms")
        if abs(clock() * 1000 - int(stamp)) > MAX_AGE_MS:
            return ("stale_request", "the request timestamp is over 5 minutes off")
        if not signature:
            return ("missing_signature", f"{SIGNATURE_HEADER} is required")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        base = (public_base_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
        uri = base + path
        decoded = uri
        for code, char in DECODED.items():
            decoded = decoded.replace(code, char).replace(code.lower(), char)
        for candidate in {uri, decoded}:
            expected = sign_v3(client_secret, request.method, candidate, body, stamp)
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return None
        return ("invalid_signature", f"{SIGNATURE_HEADER} does not match the body")

    @router.post("/webhooks/hubspot", status_code=200)
    async def hubspot_webhook(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return _refuse(413, "too_large", f"the body is over {max_body_bytes} bytes")
        refused = verify(request, body)
        if refused is not None:
            log.warning("hubspot_webhook_refused", reason=refused[0])
            return _refuse(401, *refused)
        try:
            events = EVENTS.validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            kind = "malformed_json" if first["type"] == "json_invalid" else "invalid_events"
            return _refuse(400, kind, f"{where}: {first['msg']}")
        if not all(is_valid_deal_id(CRM, str(e.object_id)) for e in events):
            return _refuse(400, "invalid_events", "objectId: a hubspot id is 1 to 20 digits")
        counts = {"accepted": 0, "duplicates": 0, "ignored": 0}
        for event in sorted(events, key=lambda e: e.occurred_at):
            event_id = str(event.event_id)
            if not seen.claim(event_id):
                counts["duplicates"] += 1
                continue
            action, kind, fields = classify(event)
            deal_id = str(event.object_id)
            try:
                if action == "trigger":
                    await starter.deal_entered_trigger(CRM, deal_id, event_id)
                elif action == "evidence":
                    await starter.evidence_arrived(CRM, deal_id, kind, event_id)
                elif action == "changed":
                    at = datetime.fromtimestamp(event.occurred_at / 1000, UTC)
                    by = event.changed_by()
                    await starter.deal_changed(CRM, deal_id, fields, event_id, at, by)
            except Exception as exc:  # the starter's failure must reach HubSpot as a retry
                seen.release(event_id)
                log.error(
                    "hubspot_webhook_failed",
                    deal_id=deal_id,
                    event_id=event_id,
                    error=type(exc).__name__,
                )
                return _refuse(503, "unavailable", "could not hand the event to the workflow")
            counts["ignored" if action == "ignored" else "accepted"] += 1
        return JSONResponse(counts)

    return router

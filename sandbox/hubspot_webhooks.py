"""Signed v3 webhooks from the HubSpot sandbox, delivered as HubSpot delivers them.

Off until a target is subscribed (``POST /_sandbox/webhooks/subscribe`` with
`WebhookSettings`, or ``create_app(webhooks=...)``). Then every deal created, changed or
archived through the API (single, batch or upsert) becomes ``deal.creation``,
``deal.propertyChange`` (one event per changed property) or ``deal.deletion`` events.
A background thread POSTs them to the target as a JSON array of at most `max_batch`
events, signed with ``X-HubSpot-Signature-v3`` (base64 HMAC-SHA256 of method + URL +
body + ``X-HubSpot-Request-Timestamp``, keyed with the app's client secret).

Delivery is at least once: a non-2xx answer or a timeout is retried with exponential
backoff (``attemptNumber`` counts up) until `max_attempts`, then dropped and counted.
Retried batches arrive after newer ones, so receivers see events out of order, as with
HubSpot; ``shuffle`` also shuffles each batch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)
Subscription = Literal["deal.creation", "deal.propertyChange", "deal.deletion"]
SUBSCRIPTION_IDS = {"deal.creation": 1001, "deal.propertyChange": 1002, "deal.deletion": 1003}
SILENT = frozenset({"hs_lastmodifieddate", "hs_object_id", "createdate"})


class WebhookSettings(BaseModel):
    """The app's webhook subscription: where to deliver, how to sign, what to send."""

    target_url: str | None = Field(default=None, description="None: webhooks are off.")
    client_secret: str = "handoff-sandbox-secret"  # noqa: S105 - the sandbox app's secret
    app_id: int = 54321
    portal_id: int = 62515
    subscriptions: list[Subscription] = ["deal.creation", "deal.propertyChange"]
    properties: list[str] = Field(default=[], description="propertyChange filter; [] = all.")
    max_batch: int = Field(default=100, ge=1, le=100)
    linger_ms: int = Field(default=200, ge=0, le=10_000)
    max_attempts: int = Field(default=10, ge=1, le=50)
    retry_base_ms: int = Field(default=1_000, ge=1, le=3_600_000)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    shuffle: bool = False


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp."""
    message = method.upper().encode() + uri.encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _ms(stamp: object) -> int:
    try:
        return int(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


@dataclass
class _Batch:
    events: list[dict[str, Any]]
    attempt: int = 0
    due: float = 0.0


class WebhookDispatcher:
    """Turns record changes into events and delivers them on a background thread."""

    def __init__(self, settings: WebhookSettings | None = None) -> None:
        self.settings = settings or WebhookSettings()
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._retries: list[_Batch] = []
        self._next_id = time.time_ns() // 1_000  # unique across restarts
        self._thread: threading.Thread | None = None
        self._closed = False
        self._rng = random.Random()
        self.counts = {"events": 0, "delivered_batches": 0, "delivered_events": 0}
        self.counts |= {"failed_attempts": 0, "dropped_events": 0}

    # -- configuration --------------------------------------------------------------------
    def subscribe(self, settings: WebhookSettings) -> None:
        with self._cond:
            self.settings = settings
            if settings.target_url is None:
                self._queue.clear()
                self._retries.clear()
            self._cond.notify_all()

    def status(self) -> dict[str, Any]:
        with self._cond:
            pending = len(self._queue) + sum(len(b.events) for b in self._retries)
            return {"settings": self.settings.model_dump(), "pending": pending, **self.counts}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- events -----------------------------------------------------------------------------
    def record(
        self, ot: str, rid: str, kind: str, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        """A store listener: `kind` is ``creation``, ``propertyChange`` or ``deletion``."""
        s = self.settings
        if s.target_url is None or ot != "deals" or f"deal.{kind}" not in s.subscriptions:
            return
        base: dict[str, Any] = {"portalId": s.portal_id, "appId": s.app_id, "attemptNumber": 0}
        base |= {"objectId": int(rid), "changeSource": "API", "sourceId": "handoff-sandbox"}
        events: list[dict[str, Any]] = []
        if kind == "propertyChange":
            at = _ms(after.get("hs_lastmodifieddate"))
            for name in sorted(set(before) | set(after)):
                if name in SILENT or before.get(name) == after.get(name):
                    continue
                if s.properties and name not in s.properties:
                    continue
                value = after.get(name)
                events.append(
                    {**base, "occurredAt": at, "propertyName": name, "propertyValue": value or ""}
                )
        else:
            stamp = after.get("createdate") if kind == "creation" else None
            made = {**base, "occurredAt": _ms(stamp) if stamp else int(time.time() * 1000)}
            if kind == "creation":
                made["changeFlag"] = "NEW"
            events.append(made)
        with self._cond:
            for event in events:
                self._next_id += 1
                event |= {
                    "eventId": self._next_id,
                    "subscriptionId": SUBSCRIPTION_IDS[f"deal.{kind}"],
                    "subscriptionType": f"deal.{kind}",
                }
                self._queue.append(event)
            self.counts["events"] += len(events)
            if events:
                self._start()
                self._cond.notify_all()

    # -- delivery ---------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="hubspot-sandbox-webhooks", daemon=True
            )
            self._thread.start()

    def _next_batch(self) -> _Batch | None:
        """Wait for a due retry or fresh events (after the linger); None when closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                due = [b for b in self._retries if b.due <= now]
                if due:
                    batch = min(due, key=lambda b: b.due)
                    self._retries.remove(batch)
                    return batch
                if self._queue:
                    size, deadline = self.settings.max_batch, now + self.settings.linger_ms / 1000
                    while len(self._queue) < size and not self._closed:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    events = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
                    if events:
                        return _Batch(events)
                    continue
                wait = min((b.due for b in self._retries), default=now + 1.0) - now
                self._cond.wait(max(0.01, min(wait, 1.0)))
            return None

    def _run(self) -> None:
        with httpx.Client() as http:
            while (batch := self._next_batch()) is not None:
                self._deliver(http, batch)

    def _deliver(self, http: httpx.Client, batch: _Batch) -> None:
        s = self.settings
        if s.target_url is None:
            return
        events = [{**e, "attemptNumber": batch.attempt} for e in batch.events]
        if s.shuffle:
            self._rng.shuffle(events)
        body = json.dumps(events, separators=(",", ":")).encode()
        stamp = int(time.time() * 1000)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(s.client_secret, "POST", s.target_url, body, stamp),
            "X-HubSpot-Request-Timestamp": str(stamp),
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (handoff-sandbox)",
        }
        try:
            response = http.post(s.target_url, content=body, headers=headers, timeout=s.timeout_s)
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            log.info("webhook delivery to %s failed: %s", s.target_url, exc)
            ok = False
        with self._cond:
            if ok:
                self.counts["delivered_batches"] += 1
                self.counts["delivered_events"] += len(events)
                return
            self.counts["failed_attempts"] += 1
            if batch.attempt + 1 >= s.max_attempts:
                self.counts["dropped_events"] += len(events)
                return
            delay = s.retry_base_ms / 1000 * 2**batch.attempt
            self._retries.append(_Batch(batch.events, batch.attempt + 1, time.monotonic() + delay))
            self._cond.notify_all()

"""A local HubSpot CRM v3/v4 API that hubspot-api-client runs against unchanged.

`create_app` builds the ASGI app: deals, contacts, companies, notes, tasks, orders,
products and line items (CRUD, list paging, search with free text, batch
read/create/update/upsert/archive with 207 multi-status, ``propertiesWithHistory``), v4
associations (pairs, batches and labels), the owners API, properties (read, create,
update, archive) and the deal pipeline. Every failure answers HubSpot's error body
(`hubspot_errors`). Every API response carries HubSpot's rate-limit headers, counted for
real over a rolling window (over the limit: a real 429 with ``Retry-After``). State lives
in SQLite. See docs/sandbox-hubspot.md.

Test and operator endpoints live under ``/_sandbox`` and need no auth:

- ``GET|POST /_sandbox/faults``: `FaultSettings`, applied before auth to every API call
  (latency, a 5xx rate with a HubSpot error body, 429 bursts with ``Retry-After``, down).
- ``GET|POST /_sandbox/limits``: ``{"max", "interval_ms", "daily"}`` of the rate limit.
- ``POST /_sandbox/lost-responses``: ``{"count"}``: the next N writes are applied, then
  answered 504 as if the response were lost on the way back.
- ``POST /_sandbox/malformed``: ``{"count", "shape"}``: the next N successful API answers
  are replaced by a 200 of an unexpected shape (after the request was applied):
  ``not_json`` (an HTML page), ``list`` (a JSON list where an object is expected) or
  ``no_properties`` (the real answer without its ``properties``).
- ``GET /_sandbox/deals/{id}/activity``: the deal's properties and its associated
  notes, tasks, orders and line items.
- ``GET /_sandbox/webhooks``, ``POST /_sandbox/webhooks/subscribe``: the webhook
  subscription (`WebhookSettings`: target URL, client secret, subscriptions...) and
  delivery counts. Off by default; see `hubspot_webhooks`.
- ``GET /_sandbox/stats``, ``POST /_sandbox/stats/reset``: request counts by
  ``"METHOD path-template"`` and ``"total"``.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.common import FaultControls, LostResponses, add_fault_routes
from sandbox.hubspot_api import CrmRoutes
from sandbox.hubspot_associations import AssociationRoutes
from sandbox.hubspot_errors import error_response, install_error_handlers
from sandbox.hubspot_owners import OwnerRoutes
from sandbox.hubspot_properties import PropertyRoutes
from sandbox.hubspot_store import Store
from sandbox.hubspot_token_info import router as token_info_router
from sandbox.hubspot_webhooks import WebhookDispatcher, WebhookSettings

STATE_FILE = "hubspot-sandbox.sqlite3"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_ONLY_POSTS = ("/search", "/batch/read")


class Limits(BaseModel):
    """The rate limit: `max` calls per rolling `interval_ms`, and a daily allowance."""

    max: int = Field(default=100, ge=1)
    interval_ms: int = Field(default=10_000, ge=100)
    daily: int = Field(default=250_000, ge=1)


class Malformed(BaseModel):
    """How many upcoming successful answers are replaced by a 200 of the wrong shape."""

    count: int = Field(default=0, ge=0)
    shape: Literal["not_json", "list", "no_properties"] = "not_json"


class RateWindow:
    """Calls counted over a rolling window and per day, as HubSpot's headers report them."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self._day: tuple[int, int] = (0, 0)  # (day number, calls)

    def take(self) -> tuple[bool, dict[str, str], float]:
        """(allowed, headers, seconds until a slot frees)."""
        with self._lock:
            now, lim = time.monotonic(), self.limits
            window = lim.interval_ms / 1000
            while self._calls and self._calls[0] <= now - window:
                self._calls.popleft()
            day = int(time.time() // 86_400)
            used_today = self._day[1] if self._day[0] == day else 0
            allowed = len(self._calls) < lim.max and used_today < lim.daily
            if allowed:
                self._calls.append(now)
                used_today += 1
            self._day = (day, used_today)
            wait = self._calls[0] + window - now if self._calls else 0.0
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(lim.interval_ms),
                "X-HubSpot-RateLimit-Max": str(lim.max),
                "X-HubSpot-RateLimit-Remaining": str(max(0, lim.max - len(self._calls))),
                "X-HubSpot-RateLimit-Daily": str(lim.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, lim.daily - used_today)),
            }
            return allowed, headers, max(0.0, wait)


def rate_limited(retry_after_s: float, headers: dict[str, str]) -> JSONResponse:
    """HubSpot's 429: its own body shape (errorType and policyName, no category)."""
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "publicapi:handoff-sandbox",
    }
    retry = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}
    return JSONResponse(body, 429, headers={**headers, **retry})


class SandboxState:
    """Everything the edge middleware and the control routes share."""

    def __init__(self, store: Store, token: str, faults: FaultControls, limits: Limits) -> None:
        self.store, self.token, self.faults = store, token, faults
        self.rate = RateWindow(limits)
        self.mutex = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.lost_responses = 0
        self.malformed = Malformed()
        self.webhooks = WebhookDispatcher()

    def malformed_shape(self) -> str | None:
        """The shape to give this (successful) answer, if one is due."""
        with self.mutex:
            if self.malformed.count <= 0:
                return None
            self.malformed = self.malformed.model_copy(update={"count": self.malformed.count - 1})
            return self.malformed.shape

    def lose_this_response(self, request: Request) -> bool:
        path = request.url.path
        if request.method not in WRITE_METHODS or path.endswith(READ_ONLY_POSTS):
            return False
        with self.mutex:
            if self.lost_responses <= 0:
                return False
            self.lost_responses -= 1
            return True


def create_app(
    store_path: Path | None,
    token: str = "handoff-sandbox",  # noqa: S107 - the documented sandbox token
    faults: FaultControls | None = None,
    limits: Limits | None = None,
    webhooks: WebhookSettings | None = None,
) -> FastAPI:
    """The sandbox app; `store_path` None keeps the portal in an in-memory SQLite.
    Webhooks stay off unless `webhooks` (or ``/_sandbox/webhooks/subscribe``) names a
    target."""
    state = SandboxState(Store(store_path), token, faults or FaultControls(), limits or Limits())
    state.webhooks = WebhookDispatcher(webhooks)
    state.store.listeners.append(state.webhooks.record)
    app = FastAPI(title="Handoff HubSpot sandbox", openapi_url=None, docs_url=None)
    app.state.sandbox = state

    install_error_handlers(app)

    @app.middleware("http")
    async def hubspot_edge(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        response = await _edge(state, request, call_next)
        route = request.scope.get("route")
        template = getattr(route, "path", request.url.path)
        with state.mutex:
            state.stats[f"{request.method} {template}"] += 1
            state.stats["total"] += 1
        return response

    app.include_router(CrmRoutes(state.store).router())
    app.include_router(AssociationRoutes(state.store).router())
    app.include_router(PropertyRoutes(state.store).router())
    app.include_router(OwnerRoutes().router())
    app.include_router(token_info_router())
    _add_control_routes(app, state)
    return app


async def _edge(
    state: SandboxState, request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Faults (before auth), authentication, the rate limit, then the handler."""
    await state.faults.delay()
    fault = state.faults.pick()
    if fault is not None and fault.status == 503:
        return error_response(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")
    if fault is not None and fault.status == 429:
        _, headers, _ = state.rate.take()
        return rate_limited(fault.retry_after_s, headers)
    if fault is not None:
        return error_response(500, "INTERNAL_ERROR", "internal error")
    if request.headers.get("authorization", "") != f"Bearer {state.token}":
        return error_response(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at "
            "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )
    allowed, headers, wait = state.rate.take()
    if not allowed:
        return rate_limited(wait, headers)
    if not _json_content(request):
        refused = error_response(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content type {request.headers.get('content-type')!r} is not supported; "
            "send application/json.",
        )
        refused.headers.update(headers)
        return refused
    response = await call_next(request)
    if state.lose_this_response(request) and response.status_code < 300:
        return error_response(504, "GATEWAY_TIMEOUT", "The upstream response was lost.")
    shape = state.malformed_shape() if response.status_code < 300 else None
    if shape is not None:
        return await _malformed(shape, response, headers)
    response.headers.update(headers)
    return response


def _json_content(request: Request) -> bool:
    """False for a body-carrying request that declares a content type other than JSON."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return True
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


async def _malformed(shape: str, response: Response, headers: dict[str, str]) -> Response:
    """A 200 whose body is not what the API documents (see ``/_sandbox/malformed``)."""
    if shape == "not_json":
        body = b"<html><body>Bad gateway page from a proxy</body></html>"
    elif shape == "list":
        body = b"[]"
    else:
        raw = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        data = json.loads(raw or b"{}")
        for record in [data, *(data.get("results") or [] if isinstance(data, dict) else [])]:
            if isinstance(record, dict):
                record.pop("properties", None)
        body = json.dumps(data).encode()
    return Response(body, 200, headers={**headers, "Content-Type": "application/json"})


def _add_control_routes(app: FastAPI, state: SandboxState) -> None:
    add_fault_routes(app, state.faults)

    @app.get("/_sandbox/limits")
    def get_limits() -> Limits:
        return state.rate.limits

    @app.post("/_sandbox/limits")
    def set_limits(limits: Limits) -> Limits:
        state.rate.limits = limits
        return limits

    @app.post("/_sandbox/lost-responses")
    def lose_responses(body: LostResponses) -> LostResponses:
        with state.mutex:
            state.lost_responses = body.count
        return body

    @app.post("/_sandbox/malformed")
    def malform(body: Malformed) -> Malformed:
        with state.mutex:
            state.malformed = body
        return body

    @app.get("/_sandbox/deals/{deal_id}/activity")
    def activity(deal_id: str) -> Response:
        store = state.store
        deal = store.get("deals", deal_id)

        def linked(ot: str) -> list[dict[str, Any]]:
            return [
                {"id": rid, **store.get(ot, rid)["properties"]}
                for rid, _ in store.associations("deals", deal_id, ot)
            ]

        return JSONResponse(
            {
                "deal": deal["properties"],
                "notes": linked("notes"),
                "tasks": linked("tasks"),
                "orders": linked("orders"),
                "line_items": linked("line_items"),
            }
        )

    @app.get("/_sandbox/webhooks")
    def webhook_status() -> dict[str, Any]:
        return state.webhooks.status()

    @app.post("/_sandbox/webhooks/subscribe")
    def subscribe(settings: WebhookSettings) -> dict[str, Any]:
        state.webhooks.subscribe(settings)
        return state.webhooks.status()

    @app.get("/_sandbox/stats")
    def stats() -> dict[str, int]:
        with state.mutex:
            return dict(state.stats)

    @app.post("/_sandbox/stats/reset", status_code=204)
    def reset_stats() -> None:
        with state.mutex:
            state.stats.clear()


def seed(store_path: Path | None = None) -> Store:
    """Open (and on a fresh file, seed) the sandbox portal; returns its store."""
    return Store(store_path)


def run(
    port: int = 8091,
    state_dir: Path = Path(".handoff"),
    token: str = "handoff-sandbox",  # noqa: S107 - the documented sandbox token
) -> None:
    """Serve the sandbox over HTTP in the foreground, its portal in the state folder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(state_dir / STATE_FILE, token=token)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")

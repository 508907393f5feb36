"""Refuse before reading: body limits, errors that never echo input, and a quiet 500.

Installed on the API app (which also serves the web pages, signed links and the webhook
ingress) by `install_limits`, before authentication and parsing run:

- **Body limits.** A declared `Content-Length` over the limit is a 413 at once, before
  a byte of the body is read; a body without one (chunked) is counted while it streams
  and cut at the limit. `/webhooks/...` keeps its own, larger limit.
- **Errors never echo the input.** FastAPI's 422 carries each error's `input` (a 200 MB
  body came back whole); the handler here keeps `type`, `loc` and `msg` only, and cuts
  long location parts (a field name is attacker-chosen text too).
- **No input yields a 500.** An unexpected exception is a bug: it answers a short JSON
  500 with a correlation id and logs one line (type, where, id), never a traceback per
  request that an attacker could use to fill the disk.
"""

from __future__ import annotations

import json
import traceback
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.settings import Settings

log = structlog.get_logger("handoff.limits")
#: Requests under this prefix are read by the webhook ingress, with its own limit.
WEBHOOK_PREFIX = "/webhooks/"
#: The longest location part (a field name) an error repeats.
MAX_LOC_CHARS = 64


def too_large(limit: int) -> dict[str, str]:
    return {"error": "too_large", "reason": f"the request body is over {limit} bytes"}


class BodyTooLarge(HTTPException):
    """The request body passed the limit while it streamed in (an HTTP error, so that
    FastAPI's body parsing lets it through as a 413 rather than a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=too_large(limit))


def _json(status: int, body: dict[str, Any]) -> list[Message]:
    raw = json.dumps(body).encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"connection", b"close"),
            ],
        },
        {"type": "http.response.body", "body": raw},
    ]


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int, webhook_max_bytes: int) -> None:
        self.app, self.max_bytes, self.webhook_max_bytes = app, max_bytes, webhook_max_bytes

    def limit_for(self, path: str) -> int:
        return self.webhook_max_bytes if path.startswith(WEBHOOK_PREFIX) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared and (not declared.isdigit() or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            body = too_large(limit) if status == 413 else {
                "error": "bad_request",
                "reason": "Content-Length must be a number of bytes",
            }  # fmt: skip
            for message in _json(status, body):
                await send(message)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:
            if not started:
                for message in _json(413, too_large(limit)):
                    await send(message)


class QuietErrors:
    """ASGI middleware: an unexpected exception is a short JSON 500 and one log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BodyTooLarge:
            raise
        except Exception as exc:  # a bug: answer briefly, log one line, never the input
            error_id = uuid.uuid4().hex[:12]
            frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
            where = f"{frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else "?"
            log.error(
                "unexpected error",
                error_id=error_id,
                error=type(exc).__name__,
                where=where,
                method=scope.get("method"),
                route=getattr(scope.get("route"), "path", None) or "unmatched",
            )
            if not started:
                body = {"error": "internal", "reason": "unexpected error", "error_id": error_id}
                for message in _json(500, body):
                    await send(message)


def _short(part: Any) -> Any:
    if isinstance(part, str) and len(part) > MAX_LOC_CHARS:
        return part[:MAX_LOC_CHARS] + "…"
    return part


async def validation_error(_: Request, exc: Exception) -> Response:
    """422 naming each field and what is allowed, without the input (nor its context)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "type": str(e.get("type", "invalid")),
            "loc": [_short(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "invalid value"))[:300],
        }
        for e in exc.errors()[:20]
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Body limits (outermost of the two), the 422 handler and the quiet 500."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(QuietErrors)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        webhook_max_bytes=settings.webhook_max_body_bytes,
    )

"""Request parsing and response helpers shared by the HubSpot sandbox's routes.

Handlers parse JSON themselves so a bad body gets HubSpot's VALIDATION_ERROR rather than
FastAPI's 422. Query booleans arrive as Python reprs (``archived=False``) and are read
case-insensitively; list parameters may repeat or be comma-separated. Every parse
failure raises `HsError`, never a bare ``ValueError``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.hubspot_errors import HsError, validation
from sandbox.hubspot_schema import OBJECT_TYPE_IDS, SINGULAR, TYPE_NAMES

BATCH_LIMIT = 100


def not_found(ot: str, rid: str) -> HsError:
    return HsError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [rid], "type": [SINGULAR.get(ot, ot.upper())]},
    )


def object_type(name: str) -> str:
    """``deals``, ``deal`` or ``0-3`` → ``deals``; unknown types are a 400."""
    if name in OBJECT_TYPE_IDS:
        return name
    if name in TYPE_NAMES:
        return TYPE_NAMES[name]
    if f"{name}s" in OBJECT_TYPE_IDS:
        return f"{name}s"
    raise HsError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")


def now_iso() -> str:
    """HubSpot's timestamp format for the current instant: ``2024-05-01T12:00:00.123Z``."""
    return iso_ms(datetime.now(UTC))


def iso_ms(moment: datetime) -> str:
    """HubSpot's timestamp format: ``2024-05-01T12:00:00.123Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name, str(default)).strip().lower()
    if value not in ("true", "false"):
        raise validation(f"{name} must be true or false, got {value!r}")
    return value == "true"


def query_list(request: Request, name: str) -> list[str]:
    return [v for raw in request.query_params.getlist(name) for v in raw.split(",") if v]


def query_int(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise validation(f"{name} must be an integer, got {raw!r}") from None
    if not 0 < value <= maximum:
        raise validation(f"{name} must be between 1 and {maximum}, got {value}")
    return value


def cursor(raw: object, name: str = "after") -> int | None:
    """A paging cursor (the sandbox's cursors are non-negative integers), or None."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    if not text.isdigit():
        raise validation(f"Invalid paging cursor: {name}={text!r} is not a cursor this API issued")
    return int(text)


def query_after(request: Request) -> int | None:
    return cursor(request.query_params.get("after"))


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise validation("Invalid input JSON on line 1: the body is not JSON") from None


async def object_body(request: Request, what: str = "body") -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise validation(f"{what} must be a JSON object")
    return body


async def batch_inputs(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(body, inputs)`` of a batch call: ``inputs`` a list of at most 100 objects."""
    body = await json_body(request)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise validation("inputs must be a list of objects")
    if len(inputs) > BATCH_LIMIT:
        raise validation(f"Too many inputs: {len(inputs)} > {BATCH_LIMIT}")
    assert isinstance(body, dict)
    return body, inputs


def ref_id(value: object, what: str) -> str:
    """The ``id`` of ``{"id": ...}`` (a record reference in a batch input), as text."""
    rid = value.get("id") if isinstance(value, dict) else None
    if not isinstance(rid, str | int) or isinstance(rid, bool) or not str(rid).strip():
        raise validation(f"{what} must be an object with an id")
    return str(rid)


def batch_response(
    results: list[Any], errors: list[dict[str, Any]], started: str, ok: int
) -> Response:
    """HubSpot's batch answer; 207 Multi-Status when some inputs failed."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(),
    }
    if errors:
        body |= {"errors": errors, "numErrors": len(errors)}
    return JSONResponse(body, 207 if errors else ok)


def batch_error(category: str, message: str, ids: list[str]) -> dict[str, Any]:
    """One entry of a 207's ``errors``."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }

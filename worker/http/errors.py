"""HTTP errors of the API and pages: one table from each typed refusal to its status."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from worker.client.handoffs import HandoffError, HandoffNotFound, Refused
from workflows.names import Refusal

#: Each refusal code to its HTTP status (every `Refusal` has a row).
HTTP_STATUS: dict[Refusal, int] = {
    Refusal.NOT_AUTHORISED: 403,
    Refusal.NOT_PENDING: 409,
    Refusal.DUPLICATE: 409,
    Refusal.TERMS_FIXED: 409,
    Refusal.ENDED: 409,
    Refusal.INVALID: 422,
    Refusal.UNKNOWN_MESSAGE: 422,
    Refusal.TOO_LARGE: 413,
}
#: A handoff that was never started, or a type that does not exist.
NOT_FOUND = 404


class ErrorBody(BaseModel):
    """Every API error: a short error name, the typed refusal code if any, the reason."""

    error: str
    reason: str
    code: Refusal | None = None


def status_of(err: HandoffError) -> int:
    """The HTTP status of a client-path error."""
    if isinstance(err, Refused):
        return HTTP_STATUS[err.code]
    return NOT_FOUND if isinstance(err, HandoffNotFound) else 500


def error_response(
    status: int, error: str, reason: str, code: Refusal | None = None
) -> JSONResponse:
    body: dict[str, str] = {"error": error, "reason": reason}
    if code is not None:
        body["code"] = code.value
    return JSONResponse(body, status_code=status)


async def handoff_error(_: Request, exc: Exception) -> Response:
    """The app's handler for `HandoffError`: `refused` with its code, or `not_found`."""
    assert isinstance(exc, HandoffError)
    if isinstance(exc, Refused):
        return error_response(status_of(exc), "refused", exc.reason, exc.code)
    return error_response(status_of(exc), "not_found", exc.reason)


#: Temporal answers that mean "not now", not "your request is wrong".
UNAVAILABLE_RPC = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}
#: Seconds a client should wait before trying again when Temporal is unreachable.
RETRY_AFTER_S = 5


def temporal_unreachable(exc: BaseException) -> bool:
    """Temporal could not be reached or did not answer in time: a lazy client's first
    connect failing, or an RPC that is unavailable, timed out or throttled."""
    if isinstance(exc, RPCError):
        return exc.status in UNAVAILABLE_RPC
    return isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect")


async def temporal_error(_: Request, exc: Exception) -> Response:
    """The app's handler for Temporal being unreachable: 503 with Retry-After, never the
    client library's text (it names addresses). Anything else is a bug: the short 500."""
    if not temporal_unreachable(exc):
        raise exc
    response = error_response(503, "unavailable", "Temporal is not reachable; try again")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response

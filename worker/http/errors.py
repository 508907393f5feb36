"""HTTP errors of the API and pages: one table from each typed refusal to its status."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

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

"""HubSpot's error body, and the exception handlers that make every failure answer in it.

HubSpot answers errors with ``{"status": "error", "message", "correlationId",
"category"}`` (plus optional ``errors``, ``context``, ``subCategory``). The handlers
installed by `install_error_handlers` turn everything else the framework could answer
(an unknown route, a wrong method, a validation failure, an unexpected exception) into
that shape, so no client ever sees FastAPI's ``{"detail": ...}``, HTML or plain text.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

#: The category HubSpot pairs with an HTTP status when the failure is not more specific.
CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "VALIDATION_ERROR",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
}


class HsError(Exception):
    """An API error as HubSpot reports it: status, category, message and details."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.errors, self.context, self.sub_category = errors or [], context, sub_category

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.errors:
            body["errors"] = self.errors
        if self.context:
            body["context"] = self.context
        return body

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def validation(message: str) -> HsError:
    """The common 400: HubSpot's VALIDATION_ERROR with `message`."""
    return HsError(400, "VALIDATION_ERROR", message)


def error_response(status: int, category: str, message: str) -> JSONResponse:
    return HsError(status, category, message).response()


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        message = f"No endpoint {request.method} {request.url.path} in the HubSpot API."
    elif status == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    category = CATEGORIES.get(status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR")
    return HsError(status, category, message).response(dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure, expected or not, with HubSpot's error body."""

    @app.exception_handler(HsError)
    async def hs_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HsError)
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _http_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "message": str(e.get("msg", "invalid")),
                "code": "INVALID_VALUE",
                "in": ".".join(str(part) for part in e.get("loc", ())),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['in']}: {e['message']}" for e in errors)
        return HsError(400, "VALIDATION_ERROR", f"Invalid input: {detail}", errors).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("hubspot sandbox: unhandled error on %s %s", request.method, request.url)
        return error_response(500, "INTERNAL_ERROR", f"internal error: {type(exc).__name__}")

"""Salesforce's REST errors as the sandbox raises them."""

from __future__ import annotations


class SfError(Exception):
    """A REST error as Salesforce reports it: status, errorCode, message and fields."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []

    def body(self) -> list[dict[str, object]]:
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]


class MultipleMatches(SfError):
    """An upsert's external id matched several records (HTTP 300)."""

    def __init__(self, obj: str, ids: list[str]) -> None:
        super().__init__(300, "MULTIPLE_CHOICES", "more than one record matches")
        self.obj, self.ids = obj, ids


class MethodNotAllowed(SfError):
    """A method the resource does not serve (HTTP 405, with the ``Allow`` header)."""

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        allowed_text = ", ".join(allowed)
        super().__init__(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{method}' not allowed. Allowed are {allowed_text}",
        )
        self.allowed = allowed_text

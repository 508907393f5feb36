"""The connector error tree: every CRM failure is translated into one of these, once,
at the connector boundary.

    CrmError
    ├── TransientCrmError        worth retrying with backoff
    │   ├── RateLimited          the CRM asked us to slow down (carries retry_after)
    │   ├── Unavailable          5xx, timeouts, connection refused
    │   └── RecordLocked         another writer holds the row (Salesforce UNABLE_TO_LOCK_ROW)
    └── PermanentCrmError        retrying cannot help; a person must act
        ├── AuthFailed           bad or revoked credentials
        ├── NotFound             the record does not exist
        └── Rejected             the CRM refused the data (validation, duplicates, shape)

Activities turn `PermanentCrmError` into a non-retryable `ApplicationError`; Temporal
retries everything else.
"""

from __future__ import annotations


class CrmError(Exception):
    """Any failure talking to a CRM. Carries the CRM, object type and record id."""

    def __init__(
        self,
        message: str,
        *,
        crm: str = "",
        object_type: str = "",
        record_id: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.crm = crm
        self.object_type = object_type
        self.record_id = record_id
        self.status = status

    def __str__(self) -> str:
        where = "/".join(p for p in (self.crm, self.object_type, self.record_id) if p)
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{where}: {self.message}{status}" if where else f"{self.message}{status}"


class TransientCrmError(CrmError):
    """A failure that may pass: retry with backoff."""


class RateLimited(TransientCrmError):
    """The CRM's rate limit was hit; `retry_after` seconds is the CRM's own advice."""

    def __init__(self, message: str, *, retry_after: float | None = None, **ctx: object) -> None:
        super().__init__(message, **ctx)  # type: ignore[arg-type]
        self.retry_after = retry_after


class Unavailable(TransientCrmError):
    """The CRM did not answer usefully: a 5xx, a timeout or a refused connection."""


class RecordLocked(TransientCrmError):
    """Another writer holds the record; retry shortly."""


class PermanentCrmError(CrmError):
    """Retrying cannot help: the credentials, the record or the data must change."""


class AuthFailed(PermanentCrmError):
    """The CRM refused our credentials (after any re-login the client attempts)."""


class NotFound(PermanentCrmError):
    """The record does not exist in the CRM."""


class Rejected(PermanentCrmError):
    """The CRM refused the request's data: validation, a duplicate, an unexpected shape."""

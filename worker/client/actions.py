"""Acting on a deal's handoff: one path for the API, the web pages and signed links.

Every action is a validated update, so a refusal comes back at once with the
workflow's reason. Temporal's errors are translated here, in one place, into
`Refused`, `DealNotFound` and `HandoffEnded`, which the HTTP layer maps to 403/409/404.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.messages import DealStatus, Receipt
from workflows.names import QUERY_STATUS, lead_to_cash_id

#: Phrases in a refusal that mean "you are not allowed", not "not now".
FORBIDDEN_PHRASES = (
    "is not an approver",
    "may not",
    "is not in team",
    "only the deal owner",
    "is not asked",
)
ReasonClass = Literal["forbidden", "conflict"]
#: How long a status query may take before the handoff counts as unavailable.
QUERY_TIMEOUT_S = 10.0


class ActionError(Exception):
    """Base of what acting on a handoff can fail with; carries an HTTP status."""

    status = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(ActionError):
    """The workflow refused the message; `reason_class` says forbidden or conflict."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason_class: ReasonClass = (
            "forbidden" if any(p in reason for p in FORBIDDEN_PHRASES) else "conflict"
        )
        self.status = 403 if self.reason_class == "forbidden" else 409


class DealNotFound(ActionError):
    """No handoff was ever started for this deal."""

    status = 404


class HandoffEnded(ActionError):
    """The handoff exists but is no longer running (complete, terminated, failed)."""

    status = 409


def refusal_reason(message: str, err: WorkflowUpdateFailedError) -> str:
    """`approve refused: X` → `X`."""
    cause = err.cause
    text = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
    prefix = f"{message} refused: "
    return text[len(prefix) :] if text.startswith(prefix) else text


async def _not_found(client: Client, crm: str, deal_id: str) -> ActionError:
    wf_id = lead_to_cash_id(crm, deal_id)
    try:
        desc = await client.get_workflow_handle(wf_id).describe()
    except RPCError:
        return DealNotFound(f"no handoff for deal {deal_id!r} in {crm} (workflow {wf_id})")
    state = desc.status.name.lower() if desc.status else "closed"
    return HandoffEnded(f"the handoff of deal {deal_id!r} in {crm} has ended ({state})")


async def send(
    client: Client, crm: str, deal_id: str, message: str, payload: dict[str, Any]
) -> Receipt:
    """Send `message` as a validated update; raises `Refused`, `DealNotFound`..."""
    handle = client.get_workflow_handle(lead_to_cash_id(crm, deal_id))
    try:
        receipt: Receipt = await handle.execute_update(message, payload, result_type=Receipt)
    except WorkflowUpdateFailedError as err:
        if isinstance(err.cause, ApplicationError) and err.cause.type == "Refused":
            raise Refused(message, refusal_reason(message, err)) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise await _not_found(client, crm, deal_id) from err
        raise
    return receipt


async def get_status(client: Client, crm: str, deal_id: str) -> DealStatus:
    """The deal's `status` query (also answered by a finished handoff)."""
    handle = client.get_workflow_handle(lead_to_cash_id(crm, deal_id))
    try:
        return await asyncio.wait_for(
            handle.query(QUERY_STATUS, result_type=DealStatus), QUERY_TIMEOUT_S
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise DealNotFound(
                f"no handoff for deal {deal_id!r} in {crm} (workflow {handle.id})"
            ) from err
        raise


async def is_running(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return desc.status == WorkflowExecutionStatus.RUNNING

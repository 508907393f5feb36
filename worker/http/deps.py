"""What every HTTP route shares: the Temporal client and metrics of the app, the handoff
a path names, and `act`, which sends one action as the signed-in user (the JSON API
and the web pages use it)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import Path, Request
from temporalio.client import Client

from worker.client import handoffs
from worker.client.handoffs import HandoffNotFound, HandoffRef, Refused
from worker.http.auth import Identity
from worker.logging import bind_deal_context
from worker.metrics import ApiMetrics
from workflows import registry
from workflows.messages import Receipt
from workflows.names import LEAD_TO_CASH, Msg

log = structlog.get_logger("handoff.api")

TypePath = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9-]{0,63}$",
        description=f"Handoff type: {', '.join(registry.type_names())}.",
    ),
]
CrmPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="hubspot, ...")]
DealPath = Annotated[str, Path(min_length=1, max_length=128, description="The CRM's deal id.")]


def typed_ref(handoff_type: TypePath, crm: CrmPath, deal_id: DealPath) -> HandoffRef:
    """`/{handoff_type}/{crm}/{deal_id}`: an unknown type is a 404, like an unknown deal."""
    try:
        return HandoffRef(registry.get(handoff_type), crm, deal_id)
    except registry.UnknownHandoffType as exc:
        raise HandoffNotFound(str(exc)) from None


def lead_to_cash_ref(crm: CrmPath, deal_id: DealPath) -> HandoffRef:
    """`/deals/{crm}/{deal_id}`: the routes from before types, kept for lead-to-cash."""
    return HandoffRef(registry.get(LEAD_TO_CASH), crm, deal_id)


def handoff_path(handoff_type: str, crm: str, deal_id: str) -> str:
    """The web page of a handoff (also a Jinja global)."""
    return f"/handoffs/{quote(handoff_type)}/{quote(crm)}/{quote(deal_id, safe='')}"


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def metrics_of(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


async def act(
    request: Request, user: Identity, ref: HandoffRef, message: Msg, payload: dict[str, Any]
) -> Receipt:
    """Send one action as `user`; count and log refusals by their code."""
    bind_deal_context(
        crm=ref.crm, deal_id=ref.deal_id, workflow_id=ref.workflow_id, approver=user.email
    )
    try:
        receipt = await handoffs.update(client_of(request), ref, message, payload)
    except Refused as err:
        metrics_of(request).count_refusal(message, err.code)
        log.info("action refused", message=message, code=err.code, reason=err.reason)
        raise
    log.info("action accepted", message=message, detail=receipt.detail, user=user.email)
    return receipt

"""What every HTTP route shares: the Temporal client and metrics of the app, and `act`,
which sends one action as the signed-in user (the JSON API and the web pages use it)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request
from temporalio.client import Client

from worker.client import actions
from worker.client.actions import Refused
from worker.http.auth import Identity
from worker.logging import bind_deal_context
from worker.metrics import ApiMetrics
from workflows.messages import Receipt
from workflows.names import Msg, lead_to_cash_id

log = structlog.get_logger("handoff.api")


def client_of(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def metrics_of(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


async def act(
    request: Request, user: Identity, crm: str, deal_id: str, message: Msg, payload: dict[str, Any]
) -> Receipt:
    """Send one action as `user`; count and log refusals. Shared with the web pages."""
    bind_deal_context(
        crm=crm, deal_id=deal_id, workflow_id=lead_to_cash_id(crm, deal_id), approver=user.email
    )
    try:
        receipt = await actions.send(client_of(request), crm, deal_id, message, payload)
    except Refused as err:
        metrics_of(request).count_refusal(message, err.reason_class)
        log.info("action refused", message=message, reason=err.reason, user=user.email)
        raise
    log.info("action accepted", message=message, detail=receipt.detail, user=user.email)
    return receipt

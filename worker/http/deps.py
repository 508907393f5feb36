"""What every HTTP route shares: the Temporal client and metrics of the app, the handoff
a path names, `act`, which sends one action as the signed-in user (the JSON API
and the web pages use it), and `record_refusal`, which puts a refusal the surface made
itself in the deal's audit trail."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from worker.client import handoffs
from worker.client.handoffs import HandoffNotFound, HandoffRef, Refused
from worker.http.auth import Identity
from worker.ids import InvalidDealId, check_deal_id
from worker.logging import bind_deal_context
from worker.metrics import ApiMetrics
from workflows import registry
from workflows.messages import Receipt, SurfaceRefusalIn
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


#: How long recording a refusal may hold up the page that refuses.
RECORD_TIMEOUT_S = 5.0


async def record_refusal(request: Request, ref: HandoffRef, refusal: SurfaceRefusalIn) -> None:
    """Record a refusal this surface made in the deal's audit trail, with who, what and
    why (only for a deal the surface can trust). It never fails the refusal page: a
    handoff that is not running, or Temporal out of reach, is logged instead."""
    try:
        recorded = await asyncio.wait_for(
            handoffs.record_refusal(client_of(request), ref, refusal), RECORD_TIMEOUT_S
        )
    except (RPCError, TimeoutError) as exc:
        log.warning("refusal not recorded in the deal", error=str(exc)[:200], code=refusal.code)
        return
    if not recorded:
        log.info("refusal not recorded: the handoff is not running", code=refusal.code)


def valid_deal_path(request: Request) -> None:
    """Router dependency: a path with `{crm}` and `{deal_id}` must hold a valid deal id
    (422 before authentication, any workflow or any CRM call)."""
    params = request.path_params
    if "deal_id" not in params:
        return
    try:
        check_deal_id(str(params.get("crm", "")), str(params["deal_id"]))
    except InvalidDealId as exc:
        raise RequestValidationError(
            [{"type": "deal_id_shape", "loc": ("path", exc.field), "msg": exc.reason}]
        ) from None

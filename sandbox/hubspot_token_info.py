"""``POST /oauth/v2/private-apps/get/access-token-info``: what a private app token may do.

HubSpot answers ``{"userId", "hubId", "appId", "scopes": [...]}`` for a private app's
access token. The sandbox token is granted every scope Handoff needs (docs/crm-setup.md),
so `handoff crm setup` reports a complete set against it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

#: The scopes the sandbox's token carries: those Handoff asks for, nothing more.
SCOPES = (
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.objects.owners.read",
    "crm.objects.orders.read",
    "crm.objects.orders.write",
)


def router() -> APIRouter:
    r = APIRouter()

    @r.post("/oauth/v2/private-apps/get/access-token-info")
    async def token_info() -> JSONResponse:
        return JSONResponse({"userId": 1, "hubId": 62515, "appId": 54321, "scopes": list(SCOPES)})

    return r

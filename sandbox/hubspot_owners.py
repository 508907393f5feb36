"""The CRM v3 Owners API of the HubSpot sandbox: the portal's users, for assignment.

``GET /crm/v3/owners/`` lists owners (filter ``email``, paging ``limit``/``after``,
``archived``); ``GET /crm/v3/owners/{ownerId}`` reads one (``idProperty`` ``id`` or
``userId``). The owners are fixed: the people of the default policy
(``workflows/default_policy.yaml``) and the seeded deals' reps. An owner's ``id`` is the
value ``hubspot_owner_id`` takes on deals and tasks. Each owner lists its ``teams``
(``id``, ``name``, ``primary``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.hubspot_errors import HsError, validation
from sandbox.hubspot_http import query_after, query_bool, query_int

OWNER_EMAILS = (
    "amy.am@example.com",
    "bill.billing@example.com",
    "carla.cfo@example.com",
    "cole.collections@example.com",
    "lee.legal@example.com",
    "maya.manager@example.com",
    "olga.ops@example.com",
    "rita.rep@example.com",
    "sam.rep@example.com",
    "sol.salesops@example.com",
    "victor.vp@example.com",
)
#: Teams (`id`, `name`) and each owner's (`primary` first). HubSpot flags no team lead:
#: who manages a team is the policy's `team_managers` (connectors/managers.py).
TEAMS = {"sales-east": ("8100001", "Sales East"), "sales-west": ("8100002", "Sales West")}
OWNER_TEAMS = {
    "sam.rep@example.com": ("sales-east",),
    "maya.manager@example.com": ("sales-east",),
    "rita.rep@example.com": ("sales-west", "sales-east"),
}
FIRST_OWNER_ID, FIRST_USER_ID = 70_000_001, 9_100_001
PAGE_LIMIT = 500
STAMP = "2024-01-01T00:00:00.000Z"


def _owner(index: int, email: str) -> dict[str, Any]:
    first, _, last = email.partition("@")[0].partition(".")
    return {
        "id": str(FIRST_OWNER_ID + index),
        "email": email,
        "type": "PERSON",
        "firstName": first.capitalize(),
        "lastName": last.capitalize(),
        "userId": FIRST_USER_ID + index,
        "userIdIncludingInactive": FIRST_USER_ID + index,
        "createdAt": STAMP,
        "updatedAt": STAMP,
        "archived": False,
        "teams": [
            {"id": TEAMS[t][0], "name": TEAMS[t][1], "primary": i == 0}
            for i, t in enumerate(OWNER_TEAMS.get(email, ()))
        ],
    }


OWNERS = [_owner(i, email) for i, email in enumerate(OWNER_EMAILS)]
OWNER_IDS = frozenset(o["id"] for o in OWNERS)


def owner_id_for(email: str) -> str | None:
    """The owner id of `email` (case-insensitive), or None."""
    wanted = email.strip().lower()
    return next((o["id"] for o in OWNERS if o["email"] == wanted), None)


class OwnerRoutes:
    """``/crm/v3/owners/`` and ``/crm/v3/owners/{ownerId}``."""

    def router(self) -> APIRouter:
        r = APIRouter()
        r.add_api_route("/crm/v3/owners", self.list_page, methods=["GET"])
        r.add_api_route("/crm/v3/owners/", self.list_page, methods=["GET"])
        r.add_api_route("/crm/v3/owners/{owner_id}", self.read, methods=["GET"])
        return r

    async def list_page(self, request: Request) -> Response:
        limit = query_int(request, "limit", 100, PAGE_LIMIT)
        after = query_after(request) or 0
        owners = [] if query_bool(request, "archived") else OWNERS
        email = request.query_params.get("email")
        if email is not None:
            owners = [o for o in owners if o["email"] == email.strip().lower()]
        page = owners[after : after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(owners):
            nxt = str(after + limit)
            link = str(request.url.include_query_params(after=nxt))
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONResponse(body)

    async def read(self, owner_id: str, request: Request) -> Response:
        id_property = request.query_params.get("idProperty", "id")
        if id_property not in ("id", "userId"):
            raise validation(f"idProperty must be id or userId, got {id_property!r}")
        owners = [] if query_bool(request, "archived") else OWNERS
        for owner in owners:
            if str(owner[id_property]) == owner_id:
                return JSONResponse(owner)
        raise HsError(404, "OBJECT_NOT_FOUND", f"No owner found with {id_property} {owner_id}")

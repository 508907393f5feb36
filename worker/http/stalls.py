"""Why deals stall: the stall analytics page (`/stalls`), its JSON (`/api/stalls`) and
its CSV export (`/api/stalls.csv`).

Attacker: any token holder (a rep, a stolen token) asking for figures they should not
see, or sending oversized or hostile filter values. Reads follow the stall board's
scopes: someone in an ops role sees every handoff; anyone else only the handoffs whose
events name them, and asking for another owner's figures is a 403 `out_of_scope`.
Filters are bounded (a type or team name, an email of at most 254 characters, dates),
anything else is a 422. Owner names are attacker-controlled text: the page escapes
them (Jinja autoescape, and `worker.stalls.charts` for the SVG), the CSV defuses
spreadsheet formulas.
"""

# No `from __future__ import annotations`: FastAPI evaluates the route signatures.

import asyncio
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from activities.stage_events import TEAM_NAMES
from worker.client.handoffs import EMAIL_PATTERN
from worker.http.auth import Identity, current_user
from worker.http.errors import error_response
from worker.http.render import page
from worker.scopes import OutOfScope, is_ops
from worker.stalls.charts import charts, hours
from worker.stalls.figures import Filters, StallFigures, compute, to_csv
from worker.stalls.store import StallStore, open_store
from workflows.names import Refusal

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
EMAIL = re.compile(EMAIL_PATTERN)


class Params(BaseModel):
    """The filters as sent: an HTML form sends every field, empty ones as ``""``."""

    handoff_type: str = Field(default="", max_length=64)
    owner: str = Field(default="", max_length=254)
    team: str = Field(default="", max_length=32)
    since: str = Field(default="", max_length=10)
    until: str = Field(default="", max_length=10)


class BadFilter(Exception):
    """422: a filter value that is not one of the allowed forms."""


def _day(name: str, value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name}: a date such as 2026-11-30") from None


def params(
    handoff_type: Annotated[str, Query(alias="type", max_length=64)] = "",
    owner: Annotated[str, Query(max_length=254, description="Owner's email")] = "",
    team: Annotated[str, Query(max_length=32, description=", ".join(TEAM_NAMES))] = "",
    since: Annotated[str, Query(max_length=10, description="First day, YYYY-MM-DD (UTC)")] = "",
    until: Annotated[str, Query(max_length=10, description="Last day, included")] = "",
) -> Params:
    return Params(handoff_type=handoff_type, owner=owner, team=team, since=since, until=until)


Filter = Annotated[Params, Depends(params)]

api = APIRouter(prefix="/api", tags=["ops"])
pages = APIRouter(include_in_schema=False)


def app_store(app: FastAPI) -> StallStore:
    """The app's stage-event store, opened on first use."""
    store: StallStore | None = getattr(app.state, "stalls", None)
    if store is None:
        store = open_store(app.state.settings)
        app.state.stalls = store
    return store


def store_of(request: Request) -> StallStore:
    return app_store(request.app)


def scoped_filters(request: Request, user: Identity, p: Params) -> Filters:
    """The filters a caller may use: ops any owner (or none), others only themselves.
    Raises `BadFilter` (422) for a value of the wrong form, `OutOfScope` (403)."""
    if p.handoff_type and not TYPE_PATTERN.match(p.handoff_type):
        raise BadFilter("type: a handoff type name such as lead-to-cash")
    if p.team and p.team not in TEAM_NAMES:
        raise BadFilter(f"team: one of {', '.join(TEAM_NAMES)}")
    owner = p.owner.strip().lower() or None
    if owner is not None and not EMAIL.match(owner):
        raise BadFilter("owner: an email address")
    since, until = _day("since", p.since), _day("until", p.until)
    if not is_ops(request, user):
        if owner is not None and owner != user.email:
            raise OutOfScope("you may read only the figures of the handoffs you act on")
        owner = user.email
    return Filters(
        handoff_type=p.handoff_type or None,
        owner=owner,
        team=p.team or None,
        since=datetime.combine(since, time(), UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
    )


async def figures(request: Request, filters: Filters) -> StallFigures:
    store = store_of(request)

    def read() -> StallFigures:
        events = store.read(handoff_type=filters.handoff_type, until=filters.until)
        return compute(events, filters, datetime.now(UTC))

    return await asyncio.to_thread(read)


@api.get("/stalls")
async def stalls_json(
    request: Request,
    user: Annotated[Identity, Depends(current_user)],
    p: Filter,
) -> StallFigures:
    """Why deals stall: time in stage (p50, p90) week by week, aging of open handoffs,
    where they wait (owner, team, what), reminders and escalations, cycle time lead →
    cash and conversion by stage. Your own handoffs only (403 `out_of_scope` for
    another owner's), unless you are in an ops role."""
    filters = scoped_filters(request, user, p)
    return await figures(request, filters)


@api.get("/stalls.csv", response_class=Response)
async def stalls_csv(
    request: Request,
    user: Annotated[Identity, Depends(current_user)],
    p: Filter,
) -> Response:
    """The same figures as one CSV table (hours), for a spreadsheet."""
    filters = scoped_filters(request, user, p)
    body = to_csv(await figures(request, filters))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="handoff-stalls.csv"',
            "Cache-Control": "no-store",
        },
    )


@pages.get("/stalls")
async def stalls_page(
    request: Request,
    p: Filter,
) -> Response:
    from worker.http.pages import _who

    who = _who(request)
    if not isinstance(who, Identity):
        return who
    try:
        filters = scoped_filters(request, who, p)
    except (OutOfScope, BadFilter) as exc:
        return page(
            request,
            "message.html",
            403 if isinstance(exc, OutOfScope) else 422,
            user=who,
            csrf=who.csrf_token(),
            title="Not yours" if isinstance(exc, OutOfScope) else "Not a filter",
            message=str(exc),
            ok=False,
        )
    fig = await figures(request, filters)
    query = request.url.query
    return page(
        request,
        "stalls.html",
        user=who,
        csrf=who.csrf_token(),
        fig=fig,
        charts=charts(fig),
        ops=is_ops(request, who),
        types=await asyncio.to_thread(store_of(request).handoff_types),
        teams=list(TEAM_NAMES),
        hours=hours,
        form=p.model_copy(update={"owner": filters.owner or ""}),
        csv_url="/api/stalls.csv" + (f"?{query}" if query else ""),
    )


async def bad_filter_error(_: Request, exc: Exception) -> Response:
    """The app's handler for `BadFilter`: 422 with the code `invalid`, naming the filter."""
    return error_response(422, "invalid", str(exc), Refusal.INVALID)

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
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from worker.client.handoffs import EMAIL_PATTERN
from worker.http.auth import Identity, current_user
from worker.http.render import page
from worker.scopes import OutOfScope, is_ops
from worker.stalls.charts import charts, hours
from worker.stalls.figures import Filters, StallFigures, compute, to_csv
from worker.stalls.store import StallStore, open_store

TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
Team = Literal["sales", "operations", "billing", "account_management", "other"]
#: Every team `activities.stage_events.TEAMS` names, and `other`.
TEAM_NAMES: list[str] = list(get_args(Team))

TypeQ = Annotated[str | None, Query(alias="type", pattern=TYPE_PATTERN, description="Handoff type")]
OwnerQ = Annotated[str | None, Query(pattern=EMAIL_PATTERN, description="Owner's email")]
TeamQ = Annotated[Team | None, Query(description="Team that owns the stages")]
SinceQ = Annotated[date | None, Query(description="First day of the period (UTC)")]
UntilQ = Annotated[date | None, Query(description="Last day of the period (UTC), included")]

api = APIRouter(prefix="/api", tags=["ops"])
pages = APIRouter(include_in_schema=False)


def store_of(request: Request) -> StallStore:
    """The app's stage-event store, opened on first use."""
    store: StallStore | None = getattr(request.app.state, "stalls", None)
    if store is None:
        store = open_store(request.app.state.settings)
        request.app.state.stalls = store
    return store


def scoped_filters(
    request: Request,
    user: Identity,
    handoff_type: str | None,
    owner: str | None,
    team: str | None,
    since: date | None,
    until: date | None,
) -> Filters:
    """The filters a caller may use: ops any owner (or none), others only themselves."""
    if owner is not None:
        owner = owner.strip().lower()
    if not is_ops(request, user):
        if owner is not None and owner != user.email:
            raise OutOfScope("you may read only the figures of the handoffs you act on")
        owner = user.email
    return Filters(
        handoff_type=handoff_type or None,
        owner=owner,
        team=team,
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
    handoff_type: TypeQ = None,
    owner: OwnerQ = None,
    team: TeamQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> StallFigures:
    """Why deals stall: time in stage (p50, p90) week by week, aging of open handoffs,
    where they wait (owner, team, what), reminders and escalations, cycle time lead →
    cash and conversion by stage. Your own handoffs only (403 `out_of_scope` for
    another owner's), unless you are in an ops role."""
    filters = scoped_filters(request, user, handoff_type, owner, team, since, until)
    return await figures(request, filters)


@api.get("/stalls.csv", response_class=Response)
async def stalls_csv(
    request: Request,
    user: Annotated[Identity, Depends(current_user)],
    handoff_type: TypeQ = None,
    owner: OwnerQ = None,
    team: TeamQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> Response:
    """The same figures as one CSV table (hours), for a spreadsheet."""
    filters = scoped_filters(request, user, handoff_type, owner, team, since, until)
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
    handoff_type: TypeQ = None,
    owner: OwnerQ = None,
    team: TeamQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> Response:
    from worker.http.pages import _who

    who = _who(request)
    if not isinstance(who, Identity):
        return who
    try:
        filters = scoped_filters(request, who, handoff_type, owner, team, since, until)
    except OutOfScope as exc:
        return page(
            request,
            "message.html",
            403,
            user=who,
            csrf=who.csrf_token(),
            title="Not yours",
            message=exc.reason,
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
        teams=TEAM_NAMES,
        hours=hours,
        form={
            "type": handoff_type or "",
            "owner": filters.owner or "",
            "team": team or "",
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
        },
        csv_url="/api/stalls.csv" + (f"?{query}" if query else ""),
    )

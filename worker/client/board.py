"""The stall board: every open handoff, what it waits on, who owes what, and its SLA.

Grouped by what the handoffs wait on, oldest first within a group, so the top of each
group is where to push. Used by `GET /api/stuck`, the `/stuck` page and `handoff stuck`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.client import Client

from worker.client.handoffs import open_statuses, type_of
from worker.wording import humane
from workflows.messages import DealStatus
from workflows.names import WaitingOn

SlaLevel = Literal["ok", "due_soon", "breached", "escalated", "paused"]
_SEVERITY: dict[SlaLevel, int] = {
    "breached": 0,
    "escalated": 1,
    "due_soon": 2,
    "paused": 3,
    "ok": 4,
}


class Owed(BaseModel):
    """Something a person owes a handoff now, and by when."""

    who: list[str]
    what: str
    due_at: datetime | None = None
    sla: SlaLevel = "ok"


class StallItem(BaseModel):
    """One open handoff on the board."""

    workflow_id: str
    type: str
    crm: str
    deal_id: str
    deal_name: str
    stage: str
    waiting_on: str
    waiting_for: str
    owner: list[str]
    since: datetime | None
    age_seconds: float
    due_at: datetime | None
    sla: SlaLevel
    owes: list[Owed] = Field(default_factory=list)


class StallGroup(BaseModel):
    """The open handoffs waiting on one kind of thing, oldest first."""

    waiting_on: str
    items: list[StallItem]


class StallBoard(BaseModel):
    """Open handoffs grouped by what they wait on, with counts per SLA state."""

    generated_at: datetime
    total: int
    counts: dict[SlaLevel, int]
    groups: list[StallGroup]


def sla_level(reported: str, due_at: datetime | None, now: datetime) -> SlaLevel:
    """The workflow's SLA state (it knows each wait's reminder time), with the deadline
    re-judged at `now`: a wait past its due time is breached whatever was reported."""
    if reported in ("paused", "escalated"):
        return reported  # type: ignore[return-value]
    if reported == "breached" or (due_at is not None and now >= due_at):
        return "breached"
    return "due_soon" if reported == "due_soon" else "ok"


def item_for(st: DealStatus, now: datetime) -> StallItem:
    """One board line from a deal's status: the main wait, then its open exceptions."""
    sla = sla_level(st.sla_state, st.due_at, now)
    owes = [Owed(who=st.owner, what=st.waiting_for or st.waiting_on, due_at=st.due_at, sla=sla)]
    for exc in st.exceptions:
        if exc.resolved_at is None:
            reported = exc.clock.state(now) if exc.clock else "none"
            owes.append(
                Owed(
                    who=exc.owner,
                    what=f"resolve {exc.kind}: {exc.note}",
                    due_at=exc.due_at,
                    sla=sla_level(reported, exc.due_at, now),
                )
            )
    return StallItem(
        workflow_id=st.workflow_id,
        type=type_of(st),
        crm=st.crm,
        deal_id=st.deal_id,
        deal_name=st.deal_name or st.deal_id,
        stage=st.stage,
        waiting_on=st.waiting_on.value,
        waiting_for=st.waiting_for,
        owner=st.owner,
        since=st.since,
        age_seconds=max((now - st.since).total_seconds(), 0.0) if st.since else 0.0,
        due_at=st.due_at,
        sla=sla,
        owes=owes,
    )


def build_board(statuses: list[DealStatus], now: datetime) -> StallBoard:
    """Group and order statuses into a board (pure: testable without Temporal)."""
    order = list(WaitingOn)
    groups: dict[str, list[StallItem]] = {}
    for st in statuses:
        if st.done or st.waiting_on == WaitingOn.NOTHING:
            continue
        groups.setdefault(st.waiting_on.value, []).append(item_for(st, now))
    counts: dict[SlaLevel, int] = dict.fromkeys(_SEVERITY, 0)
    for items in groups.values():
        items.sort(key=lambda i: (i.since or now, i.workflow_id))
        for i in items:
            counts[i.sla] += 1
    return StallBoard(
        generated_at=now,
        total=sum(len(v) for v in groups.values()),
        counts=counts,
        groups=[
            StallGroup(waiting_on=k, items=groups[k])
            for k in sorted(groups, key=lambda k: order.index(WaitingOn(k)))
        ],
    )


async def stall_board(
    client: Client,
    now: datetime | None = None,
    visible: Callable[[DealStatus], bool] | None = None,
) -> StallBoard:
    """The board of every running handoff of every type (those `visible` passes, if
    given), judged at `now` (default: now)."""
    statuses = [st for st in await open_statuses(client) if visible is None or visible(st)]
    return build_board(statuses, now or datetime.now(UTC))


def _age(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    return f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m"


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "no deadline"


def render_text(board: StallBoard) -> str:
    """The board as plain text for `handoff stuck` (no colours, fits 100 columns)."""
    summary = ", ".join(
        f"{n} {level.replace('_', ' ')}"
        for level, n in sorted(board.counts.items(), key=lambda kv: _SEVERITY[kv[0]])
        if n
    )
    lines = [
        f"Stall board at {board.generated_at:%Y-%m-%d %H:%M} UTC: "
        f"{board.total} open handoff{'s' if board.total != 1 else ''}"
        + (f" ({summary})" if summary else "")
    ]
    for group in board.groups:
        lines += ["", f"WAITING ON {group.waiting_on.upper()} ({len(group.items)})"]
        for i in group.items:
            lines.append(
                f"  {i.sla.upper().replace('_', ' '):<10} {i.type} {i.crm}/{i.deal_id}  "
                f"{i.deal_name}  [{i.stage}]  waiting {_age(i.age_seconds)}"
            )
            for owed in i.owes:
                who = ", ".join(owed.who) or "nobody"
                lines.append(
                    f"{'':13}{who} owes {humane(owed.what)}, due {_when(owed.due_at)}"
                    + (
                        f" ({owed.sla.replace('_', ' ')})"
                        if owed.sla != i.sla or owed is not i.owes[0]
                        else ""
                    )
                )
    if not board.groups:
        lines.append("Nothing is stuck.")
    return "\n".join(lines)

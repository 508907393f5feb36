"""The stall figures, computed from stage events the same way whatever the database.

A handoff's events make *stays*: a stay in a stage starts at the first event naming that
stage and ends at the first later event naming another (`done` included). A handoff
lost in the CRM (`ended`) closes its last stay without counting it as time in stage.

Percentiles are nearest-rank: of n sorted values, p50 is the value at rank ceil(n/2),
p90 the one at rank ceil(0.9 n). Weeks start on Monday (UTC) and a stay counts in the
week it started. Filters: the handoff type (in the query), an owner (handoffs that
ever named them), a team (the stages it owns) and a period: stays that started, nudges
sent, handoffs finished or started inside it; aging is measured at its end (or now).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, Field

from activities.stage_events import StageEvent, team_of

#: Stages in business order, so tables read like the process.
STAGE_ORDER = [
    "qualify",
    "deal_desk",
    "close",
    "sales_to_ops",
    "delivery",
    "ops_to_billing",
    "cash",
    "window",
    "usage",
    "pricing",
    "signature",
]
AGE_BUCKETS: list[tuple[str, float]] = [
    ("under 1d", 86_400),
    ("1-3d", 3 * 86_400),
    ("3-7d", 7 * 86_400),
    ("over 7d", math.inf),
]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def week_of(at: datetime) -> date:
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def stage_rank(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage), stage) if stage in STAGE_ORDER else (len(STAGE_ORDER), stage)


class Filters(BaseModel):
    handoff_type: str | None = None
    owner: str | None = None
    team: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class StageWeek(BaseModel):
    week: date | None = Field(description="Monday of the week; None: the whole period.")
    stage: str
    count: int
    p50_s: float
    p90_s: float


class Aging(BaseModel):
    stage: str
    open: int
    p50_s: float
    max_s: float
    buckets: dict[str, int]


class WaitGroup(BaseModel):
    by: str = Field(description="owner, team or waiting_on")
    value: str
    open: int
    oldest_s: float


class Nudges(BaseModel):
    stage: str
    reminders: int
    escalations: int


class CycleTime(BaseModel):
    week: date | None
    count: int
    p50_s: float
    p90_s: float


class Conversion(BaseModel):
    stage: str
    entered: int
    advanced: int
    lost: int
    rate: float = Field(description="advanced / entered (0 when none entered)")


class StallFigures(BaseModel):
    filters: Filters
    as_of: datetime
    handoffs: int
    open: int
    time_in_stage: list[StageWeek]
    aging: list[Aging]
    waits: list[WaitGroup]
    nudges: list[Nudges]
    cycle_time: list[CycleTime]
    conversion: list[Conversion]


@dataclass
class _Stay:
    stage: str
    start: datetime
    end: datetime | None = None
    lost: bool = False
    owners: list[str] = field(default_factory=list)
    waiting_on: str = ""


@dataclass
class _Handoff:
    events: list[StageEvent] = field(default_factory=list)
    stays: list[_Stay] = field(default_factory=list)
    done_at: datetime | None = None
    lost: bool = False

    @property
    def open(self) -> bool:
        return self.done_at is None and not self.lost

    @property
    def started(self) -> datetime:
        return self.events[0].at


def _build(events: Iterable[StageEvent]) -> dict[str, _Handoff]:
    handoffs: dict[str, _Handoff] = defaultdict(_Handoff)
    for ev in events:
        h = handoffs[ev.workflow_id]
        h.events.append(ev)
        current = h.stays[-1] if h.stays else None
        if ev.kind in ("reminder", "escalation") or not h.open:
            continue
        if ev.kind == "ended":
            h.lost = True
            if current is not None and current.end is None:
                current.end, current.lost = ev.at, True
            continue
        if ev.kind == "done" or ev.stage == "done":
            h.done_at = ev.at
            if current is not None and current.end is None:
                current.end = ev.at
            continue
        if current is None or current.stage != ev.stage:
            if current is not None:
                current.end = ev.at
            current = _Stay(stage=ev.stage, start=ev.at)
            h.stays.append(current)
        current.owners, current.waiting_on = ev.owners, ev.waiting_on
    return handoffs


def _in(at: datetime, f: Filters) -> bool:
    return (f.since is None or at >= f.since) and (f.until is None or at < f.until)


def _buckets(ages: Sequence[float]) -> dict[str, int]:
    counts = dict.fromkeys((name for name, _ in AGE_BUCKETS), 0)
    for age in ages:
        name = next(n for n, limit in AGE_BUCKETS if age < limit)
        counts[name] += 1
    return counts


def compute(events: Iterable[StageEvent], filters: Filters, now: datetime) -> StallFigures:
    """Every figure of the stall page (see the module docstring for the rules)."""
    f = filters
    as_of = min(now, f.until) if f.until else now
    owner = f.owner.strip().lower() if f.owner else None
    handoffs = {
        wid: h
        for wid, h in _build(e for e in events if e.at < as_of or e.at == as_of).items()
        if owner is None or any(owner in (o.lower() for o in e.owners) for e in h.events)
    }

    def team_ok(stage: str) -> bool:
        return f.team is None or team_of(stage) == f.team

    stays = [(h, s) for h in handoffs.values() for s in h.stays if team_ok(s.stage)]
    # time in stage, week by week and over the whole period
    durations: dict[tuple[date | None, str], list[float]] = defaultdict(list)
    for _, s in stays:
        if s.end is not None and not s.lost and _in(s.start, f):
            seconds = (s.end - s.start).total_seconds()
            durations[(week_of(s.start), s.stage)].append(seconds)
            durations[(None, s.stage)].append(seconds)
    time_in_stage = [
        StageWeek(
            week=week,
            stage=stage,
            count=len(v),
            p50_s=percentile(v, 0.5),
            p90_s=percentile(v, 0.9),
        )
        for (week, stage), v in sorted(
            durations.items(), key=lambda kv: (kv[0][0] or date.max, stage_rank(kv[0][1]))
        )
    ]
    # open handoffs: aging of their current stay, and who or what they wait on
    current = [
        (h.stays[-1], (as_of - h.stays[-1].start).total_seconds())
        for h in handoffs.values()
        if h.open and h.stays and team_ok(h.stays[-1].stage)
    ]
    by_stage: dict[str, list[float]] = defaultdict(list)
    for s, age in current:
        by_stage[s.stage].append(age)
    aging = [
        Aging(
            stage=stage,
            open=len(ages),
            p50_s=percentile(ages, 0.5),
            max_s=max(ages),
            buckets=_buckets(ages),
        )
        for stage, ages in sorted(by_stage.items(), key=lambda kv: stage_rank(kv[0]))
    ]
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for s, age in current:
        for o in s.owners or ["(nobody)"]:
            groups[("owner", o)].append(age)
        groups[("team", team_of(s.stage))].append(age)
        groups[("waiting_on", s.waiting_on or "(in progress)")].append(age)
    waits = [
        WaitGroup(by=by, value=value, open=len(ages), oldest_s=max(ages))
        for (by, value), ages in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1])))
    ]
    # reminders and escalations sent in the period
    nudge: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for h in handoffs.values():
        for e in h.events:
            if e.kind in ("reminder", "escalation") and _in(e.at, f) and team_ok(e.stage):
                nudge[e.stage][0 if e.kind == "reminder" else 1] += 1
    nudges = [
        Nudges(stage=stage, reminders=r, escalations=x)
        for stage, (r, x) in sorted(nudge.items(), key=lambda kv: stage_rank(kv[0]))
    ]
    # cycle time lead → cash: handoffs finished in the period, by week of finishing
    cycles: dict[date | None, list[float]] = defaultdict(list)
    for h in handoffs.values():
        if h.done_at is not None and _in(h.done_at, f):
            seconds = (h.done_at - h.started).total_seconds()
            cycles[week_of(h.done_at)].append(seconds)
            cycles[None].append(seconds)
    cycle_time = [
        CycleTime(week=w, count=len(v), p50_s=percentile(v, 0.5), p90_s=percentile(v, 0.9))
        for w, v in sorted(cycles.items(), key=lambda kv: kv[0] or date.max)
    ]
    # conversion: of the handoffs started in the period, how many left each stage forward
    conv: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for h, s in stays:
        if _in(h.started, f):
            row = conv[s.stage]
            row[0] += 1
            if s.end is not None and not s.lost:
                row[1] += 1
            if s.lost:
                row[2] += 1
    conversion = [
        Conversion(stage=stage, entered=n, advanced=a, lost=lost, rate=a / n if n else 0.0)
        for stage, (n, a, lost) in sorted(conv.items(), key=lambda kv: stage_rank(kv[0]))
    ]
    return StallFigures(
        filters=f,
        as_of=as_of,
        handoffs=len(handoffs),
        open=sum(1 for h in handoffs.values() if h.open),
        time_in_stage=time_in_stage,
        aging=aging,
        waits=waits,
        nudges=nudges,
        cycle_time=cycle_time,
        conversion=conversion,
    )


CSV_COLUMNS = [
    "figure",
    "week",
    "stage",
    "by",
    "value",
    "count",
    "p50_hours",
    "p90_hours",
    "max_hours",
    "reminders",
    "escalations",
    "advanced",
    "lost",
    "rate",
]


def _h(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def _cell(value: str) -> str:
    """No spreadsheet formula from attacker-controlled text (owner names)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(fig: StallFigures) -> str:
    """Every figure as one long CSV table (hours, not seconds)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for t in fig.time_in_stage:
        w.writerow(
            {
                "figure": "time_in_stage",
                "week": t.week.isoformat() if t.week else "all",
                "stage": t.stage,
                "count": t.count,
                "p50_hours": _h(t.p50_s),
                "p90_hours": _h(t.p90_s),
            }
        )
    for a in fig.aging:
        w.writerow(
            {
                "figure": "aging",
                "stage": a.stage,
                "count": a.open,
                "p50_hours": _h(a.p50_s),
                "max_hours": _h(a.max_s),
            }
        )
    for g in fig.waits:
        w.writerow(
            {
                "figure": "waits",
                "by": g.by,
                "value": _cell(g.value),
                "count": g.open,
                "max_hours": _h(g.oldest_s),
            }
        )
    for n in fig.nudges:
        w.writerow(
            {
                "figure": "nudges",
                "stage": n.stage,
                "reminders": n.reminders,
                "escalations": n.escalations,
            }
        )
    for c in fig.cycle_time:
        w.writerow(
            {
                "figure": "cycle_time",
                "week": c.week.isoformat() if c.week else "all",
                "count": c.count,
                "p50_hours": _h(c.p50_s),
                "p90_hours": _h(c.p90_s),
            }
        )
    for v in fig.conversion:
        w.writerow(
            {
                "figure": "conversion",
                "stage": v.stage,
                "count": v.entered,
                "advanced": v.advanced,
                "lost": v.lost,
                "rate": f"{v.rate:.4f}",
            }
        )
    return buf.getvalue()

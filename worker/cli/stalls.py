"""`handoff stalls`: why deals stall, as tables and bar charts in the terminal, or CSV.

It reads the stage-event store directly (`HANDOFF_STALLS_DSN`, else the state folder's
SQLite file; under a running `handoff dev`, that stack's folder), so it is an operator's
command: whoever can run it can read the database anyway. The figures and their rules
are the web page's (`worker.stalls.figures`).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from activities.stage_events import TEAM_NAMES
from worker.cli import exit_codes
from worker.cli.context import load_settings
from worker.cli.render import print_table

if TYPE_CHECKING:  # the figures and charts load when `handoff stalls` runs, not with the CLI
    from worker.stalls.figures import StallFigures

TYPE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
BAR = 30

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _printable(text: str) -> str:
    """No terminal control sequence from a stored name."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _bars(title: str, rows: list[tuple[str, float, str]]) -> None:
    """A horizontal bar chart in text: one line per row."""
    out.print(f"[bold]{title}[/]")
    if not rows:
        out.print("  (no data)")
        return
    top = max(v for _, v, _ in rows) or 1.0
    width = max(len(label) for label, _, _ in rows)
    for label, value, shown in rows:
        bar = "█" * max(1 if value else 0, round(BAR * value / top))
        line = f"  {_printable(label):<{width}} {bar} {shown}"
        out.print(line, markup=False, highlight=False)


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:  # cells are text, never markup (owner names come from outside)
        table.add_row(*(Text(_printable(c)) for c in r))
    print_table(out, table)


def _week(week: date | None) -> str:
    return week.isoformat() if week else "whole period"


def render(fig: StallFigures) -> None:
    from worker.stalls.charts import hours

    out.print(
        f"{fig.handoffs} handoffs, {fig.open} open, as of {fig.as_of:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    whole = [t for t in fig.time_in_stage if t.week is None]
    _bars("Time in stage, p90", [(t.stage, t.p90_s, hours(t.p90_s)) for t in whole])
    _table(
        "Time in each stage, week by week",
        ["week of", "stage", "stays", "p50", "p90"],
        [
            [_week(t.week), t.stage, str(t.count), hours(t.p50_s), hours(t.p90_s)]
            for t in fig.time_in_stage
        ],
    )
    _bars("Open handoffs by stage", [(a.stage, a.open, f"{a.open} open") for a in fig.aging])
    _table(
        "Aging of open handoffs",
        ["stage", "open", "p50 age", "oldest", *(fig.aging[0].buckets if fig.aging else [])],
        [
            [a.stage, str(a.open), hours(a.p50_s), hours(a.max_s)]
            + [str(n) for n in a.buckets.values()]
            for a in fig.aging
        ],
    )
    _table(
        "Where handoffs wait",
        ["by", "who or what", "open", "oldest"],
        [[w.by, w.value, str(w.open), hours(w.oldest_s)] for w in fig.waits],
    )
    _table(
        "Reminders and escalations",
        ["stage", "reminders", "escalations"],
        [[n.stage, str(n.reminders), str(n.escalations)] for n in fig.nudges],
    )
    _table(
        "Cycle time, lead to cash",
        ["week finished", "handoffs", "p50", "p90"],
        [[_week(c.week), str(c.count), hours(c.p50_s), hours(c.p90_s)] for c in fig.cycle_time],
    )
    _bars(
        "Conversion by stage",
        [(v.stage, v.rate, f"{v.rate:.0%} of {v.entered}") for v in fig.conversion],
    )


def stalls(
    handoff_type: str | None = typer.Option(None, "--type", help="Only this handoff type."),
    owner: str | None = typer.Option(None, "--owner", help="Handoffs that named this person."),
    team: str | None = typer.Option(
        None, "--team", help=f"Stages of one team: {', '.join(TEAM_NAMES)}."
    ),
    since: datetime | None = typer.Option(
        None, "--since", formats=["%Y-%m-%d"], help="First day of the period (UTC)."
    ),
    until: datetime | None = typer.Option(
        None, "--until", formats=["%Y-%m-%d"], help="Last day of the period, included."
    ),
    csv_path: str | None = typer.Option(
        None, "--csv", help="Write the figures as CSV to this file (`-`: standard output)."
    ),
) -> None:
    """Why deals stall: time in stage, aging, where handoffs wait, nudges, cycle time and
    conversion, from the stage-event store."""
    from worker.stack_file import read_running
    from worker.stalls.figures import Filters, compute, to_csv
    from worker.stalls.store import StallStore, default_dsn

    if handoff_type is not None and not TYPE_RE.match(handoff_type):
        err.print("--type: a handoff type name such as lead-to-cash")
        raise typer.Exit(exit_codes.BAD_INPUT)
    if team is not None and team not in TEAM_NAMES:
        err.print(f"--team: one of {', '.join(TEAM_NAMES)}")
        raise typer.Exit(exit_codes.BAD_INPUT)
    if owner is not None and not 3 <= len(owner) <= 254:
        err.print("--owner: an email address")
        raise typer.Exit(exit_codes.BAD_INPUT)
    settings = load_settings()
    if settings.stalls_dsn is not None:
        dsn = settings.stalls_dsn.get_secret_value()
    else:
        stack = read_running(settings.state_dir)
        dsn = default_dsn(Path(stack.state_dir) if stack else settings.state_dir)
    filters = Filters(
        handoff_type=handoff_type,
        owner=owner,
        team=team,
        since=since.replace(tzinfo=UTC) if since else None,
        until=datetime.combine(until.date() + timedelta(days=1), time(), UTC) if until else None,
    )
    store = StallStore(dsn)
    try:
        events = store.read(handoff_type=filters.handoff_type, until=filters.until)
    finally:
        store.close()
    fig = compute(events, filters, datetime.now(UTC))
    if csv_path == "-":
        sys.stdout.write(to_csv(fig))
    elif csv_path:
        Path(csv_path).write_text(to_csv(fig), encoding="utf-8")
        out.print(f"Wrote {csv_path}", highlight=False)
    else:
        render(fig)

"""Human-readable output for the CLI: a handoff's status and `list` results."""

from __future__ import annotations

import io
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from worker.client.handoffs import Listing, type_of
from worker.wording import humane, role, words
from workflows.messages import DealStatus
from workflows.quote import line_words, margin_words

_SLA_COLOURS = {
    "ok": "green",
    "due_soon": "yellow",
    "breached": "red",
    "escalated": "red",
    "paused": "blue",
    "none": "white",
}


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


#: Width tables are laid out in: wide enough that no cell (a workflow id, a command) is
#: ever wrapped or cut; a table takes only the width its cells need.
UNWRAPPED = 10_000


def print_table(out: Console, table: Table) -> None:
    """Print a table at its natural width, never squeezed to the terminal's: a cell's
    id or command stays on one line (the terminal may fold it; a paste keeps it whole)."""
    wide = Console(
        width=UNWRAPPED,
        file=io.StringIO(),
        force_terminal=out.is_terminal,
        color_system=out.color_system,  # type: ignore[arg-type]  # the name it was given
        no_color=out.no_color,
    )
    wide.print(table)
    text = wide.file.getvalue()  # type: ignore[attr-defined]
    out.print(Text.from_ansi(text.rstrip("\n")), soft_wrap=True)


def render_status(out: Console, st: DealStatus) -> None:
    """Stage, what it waits on, from whom, since and until when; then the record."""
    out.print(
        f"[bold]{st.deal_name or st.deal_id}[/]  ({st.workflow_id}, policy {st.policy_version})"
    )
    out.print(f"  type        {type_of(st)}")
    ended = (
        f"  [red](ended: {st.outcome} in the CRM)[/]" if st.outcome else "  [green](complete)[/]"
    )
    out.print(f"  stage       {st.stage}" + (ended if st.done else ""))
    if not st.done:
        colour = _SLA_COLOURS[st.sla_state]
        what = humane(st.waiting_for).removeprefix(f"{st.waiting_on}: ")  # said once
        out.print(f"  waiting on  {st.waiting_on}: {what}")
        out.print(f"  from        {words(st.owner, empty='-')}")
        out.print(f"  since       {_when(st.since)}")
        out.print(f"  due         {_when(st.due_at)}  [{colour}]{st.sla_state}[/]")
    out.print(
        f"  terms       {st.terms.amount:,.2f} at {st.terms.discount_percent:g}% "
        f"(net {st.terms.net:,.2f})"
    )
    if st.margin_source:
        out.print(f"  margin      {escape(margin_words(st.margin_percent, st.margin_source))}")
    for line in st.terms.lines:
        out.print(f"  line        {escape(line_words(line))}")
    if st.pending_approval:
        p = st.pending_approval
        out.print(
            f"  approval    round {p.round}, tier {role(p.tier)}, margin {p.margin_percent:g}%"
            + (f" — {escape(p.rule)}" if p.rule else "")
            + (" [red](escalated)[/]" if p.escalated else "")
        )
    for q in st.conversation:
        answer = q.answer or q.closed or "[yellow]awaiting the rep's answer[/]"
        out.print(
            f"  question    {role(q.tier)}: {q.approver} asks “{escape(q.question)}” — "
            + (escape(f"{q.answered_by}: “{answer}”") if q.answer else answer)
        )
    if st.missing_fields:
        out.print(f"  missing     {', '.join(st.missing_fields)}", soft_wrap=True)
    if st.evidence:
        out.print("  evidence    " + ", ".join(f"{e.kind} ({e.by})" for e in st.evidence))
    for a in st.approvals:
        out.print(f"  approval    {role(a.tier)}: {a.decision} by {a.approver}: {a.reason}")
    for e in st.exceptions:
        state = "resolved" if e.resolved_at else "[red]open[/]"
        out.print(f"  exception   {role(e.kind)} ({state}): {humane(e.note)}")
    table = Table("when", "what", "by", "", title="recent history", title_justify="left")
    for h in st.history[-12:]:
        table.add_row(
            f"{h.at:%m-%d %H:%M}",
            f"{h.kind}: {humane(h.detail)}",
            h.by or "",
            "" if h.accepted else "[red]refused[/]",
        )
    print_table(out, table)


def render_listings(listings: list[Listing]) -> Table:
    """Open handoffs as a table: workflow, type, stage, what it waits on, owner, due."""
    table = Table("workflow", "type", "stage", "waiting on", "owner", "due")
    for item in listings:
        table.add_row(
            item.workflow_id,
            item.type,
            item.stage,
            item.waiting_on,
            ", ".join(item.owner),
            f"{item.due_at:%Y-%m-%d %H:%M}" if item.due_at else "",
        )
    return table

"""Human-readable output for the CLI: a handoff's status and `list` results."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from worker.client.handoffs import Listing, type_of
from workflows.messages import DealStatus

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


def render_status(out: Console, st: DealStatus) -> None:
    """Stage, what it waits on, from whom, since and until when; then the record."""
    out.print(
        f"[bold]{st.deal_name or st.deal_id}[/]  ({st.workflow_id}, policy {st.policy_version})"
    )
    out.print(f"  type        {type_of(st)}")
    out.print(f"  stage       {st.stage}" + ("  [green](complete)[/]" if st.done else ""))
    if not st.done:
        colour = _SLA_COLOURS[st.sla_state]
        out.print(f"  waiting on  {st.waiting_on}: {st.waiting_for}")
        out.print(f"  from        {', '.join(st.owner) or '-'}")
        out.print(f"  since       {_when(st.since)}")
        out.print(f"  due         {_when(st.due_at)}  [{colour}]{st.sla_state}[/]")
    out.print(
        f"  terms       {st.terms.amount:,.2f} at {st.terms.discount_percent:g}% "
        f"(net {st.terms.net:,.2f})"
    )
    if st.pending_approval:
        p = st.pending_approval
        out.print(
            f"  approval    round {p.round}, tier {p.tier}, margin {p.margin_percent:g}%"
            + (" [red](escalated)[/]" if p.escalated else "")
        )
    if st.missing_fields:
        out.print(f"  missing     {', '.join(st.missing_fields)}")
    if st.evidence:
        out.print("  evidence    " + ", ".join(f"{e.kind} ({e.by})" for e in st.evidence))
    for a in st.approvals:
        out.print(f"  approval    {a.tier}: {a.decision} by {a.approver}: {a.reason}")
    for e in st.exceptions:
        state = "resolved" if e.resolved_at else "[red]open[/]"
        out.print(f"  exception   {e.kind} ({state}): {e.note}")
    table = Table("when", "what", "by", "", title="recent history", title_justify="left")
    for h in st.history[-12:]:
        table.add_row(
            f"{h.at:%m-%d %H:%M}",
            f"{h.kind}: {h.detail}",
            h.by or "",
            "" if h.accepted else "[red]refused[/]",
        )
    out.print(table)


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

"""`handoff people reassign` and `handoff people away`: people changes across every open
handoff (worker/client/people.py), each move recorded in the deal's history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import typer
from rich.console import Console
from temporalio.client import Client

from worker.cli import exit_codes
from worker.client import people
from worker.settings import Settings

people_app = typer.Typer(
    help="Move people's work: someone left, or is out of office.", no_args_is_help=True
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
Runner = Callable[[Callable[[Client, Settings], Awaitable[list[people.Moved]]]], list[people.Moved]]


def _report(moved: list[people.Moved]) -> None:
    acted = [m for m in moved if m.moved_something]
    for m in acted:
        out.print(f"{m.workflow_id}: {m.detail}", markup=False, highlight=False)
    out.print(
        f"{len(acted)} handoff(s) moved, {len(moved) - len(acted)} more recorded the stand-in",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer, run: Runner) -> None:
    """Add `handoff people …`, with the CLI's own connect-and-map-errors runner."""

    @people_app.command("reassign")
    def reassign(
        from_: str = typer.Option(..., "--from", help="Who left (email)."),
        to: str = typer.Option(..., "--to", help="Who takes over (email)."),
        as_: str = typer.Option(..., "--as", help="Who makes the change (sales ops)."),
        reason: str = typer.Option("left the team", help="Why, for each deal's history."),
    ) -> None:
        """Move every open wait, approval and CRM task of --from to --to, for good."""
        _report(
            run(
                lambda c, s: people.reassign(
                    c, from_person=from_, to_person=to, by=as_, reason=reason
                )
            )
        )

    @people_app.command("away")
    def away(
        person: str = typer.Argument(..., help="Who is out of office (email)."),
        until: str = typer.Option(..., help="Back on this date (2026-12-24) or date-time."),
        delegate: str = typer.Option(..., help="Who acts meanwhile (email)."),
        as_: str | None = typer.Option(None, "--as", help="Who sets it (default: PERSON)."),
        reason: str = typer.Option("out of office", help="Why, for each deal's history."),
    ) -> None:
        """Out of office until a date: open and later asks of PERSON go to --delegate."""
        try:
            back = people.parse_until(until)
        except ValueError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(exit_codes.BAD_INPUT) from None
        _report(
            run(
                lambda c, s: people.away(
                    c,
                    person=person,
                    delegate=delegate,
                    until=back,
                    by=as_ or person,
                    reason=reason,
                )
            )
        )

    app.add_typer(people_app, name="people")

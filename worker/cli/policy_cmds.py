"""`handoff policy diff`, `simulate` and `apply`: what a policy edit changes and for
whom, what every open handoff would be asked under it, and moving open handoffs onto
it (new handoffs start on the live file as it is, see `worker.policy`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from worker.cli import exit_codes
from workflows.policy import Policy, PolicyError, load_policy
from workflows.policy_diff import diff

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _load(path: Path) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        err.print(f"[red]{exc}[/]", markup=True, highlight=False)
        raise typer.Exit(exit_codes.BAD_INPUT) from None


def policy_diff(
    old: Path = typer.Argument(..., help="The policy in force (e.g. the live file)."),
    new: Path = typer.Argument(..., help="The edited policy."),
    as_json: bool = typer.Option(False, "--json", help="People and settings as JSON."),
) -> None:
    """What changes from OLD to NEW: who gains or loses which duty, then every setting."""
    change = diff(_load(old), _load(new))
    if as_json:
        body = {
            "old_version": change.old_version,
            "new_version": change.new_version,
            "people": [asdict(p) for p in change.people],
            "rules": [
                {"path": r.path, "old": _plain(r.old), "new": _plain(r.new)} for r in change.rules
            ],
        }
        out.print_json(json.dumps(body))
        return
    for line in change.lines():
        out.print(line, markup=False, highlight=False)


def _plain(value: object) -> object:
    """JSON for a setting's value; an unset one is null."""
    return value if isinstance(value, str | int | float | bool | list | dict) else None


def register(policy_app: typer.Typer, run: Any) -> None:
    """Add the commands, with the CLI's own connect-and-map-errors runner."""
    policy_app.command("diff")(policy_diff)

    @policy_app.command("simulate")
    def policy_simulate(
        file: Path = typer.Argument(..., help="The policy to try."),
        changed_only: bool = typer.Option(False, "--changed", help="Only handoffs it changes."),
    ) -> None:
        """What every open handoff is asked now (live policy), and would be under FILE."""
        from worker.client.policy_moves import simulate
        from worker.policy import load_configured_policy

        new = _load(file)

        async def go(client: Any, settings: Any) -> list[Any]:
            return await simulate(client, load_configured_policy(settings), new)

        rows = run(go)
        shown = [r for r in rows if r.changes or not changed_only]
        for r in shown:
            mark = "changes" if r.changes else "same"
            out.print(
                f"{r.workflow_id} [{mark}]\n  now:       {r.now}\n  under new: {r.under_new}",
                markup=False,
                highlight=False,
            )
        changed = sum(r.changes for r in rows)
        out.print(f"{len(rows)} open handoff(s), {changed} would be asked otherwise", markup=False)

    @policy_app.command("apply")
    def policy_apply(
        file: Path = typer.Argument(..., help="The policy to move open handoffs to."),
        open_: bool = typer.Option(False, "--open", help="Move every open handoff (required)."),
        as_: str = typer.Option(..., "--as", help="Who applies it (sales ops)."),
        reason: str = typer.Option("policy update", help="Why, for each deal's history."),
    ) -> None:
        """Move open handoffs to FILE where their state allows; given approvals stay."""
        from worker.client.policy_moves import apply_open

        if not open_:
            err.print("say --open: apply moves every open handoff to FILE")
            raise typer.Exit(exit_codes.BAD_INPUT)
        new = _load(file)
        moved = run(lambda client, settings: apply_open(client, new, by=as_, reason=reason))
        for m in moved:
            out.print(f"{m.workflow_id}: {m.detail}", markup=False, highlight=False)
        out.print(f"{len(moved)} open handoff(s) moved to {new.version}", markup=False)

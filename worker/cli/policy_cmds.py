"""`handoff policy diff`: what a policy edit changes, and for whom, before it is saved
over the live file (new handoffs start on the file as it is, see `worker.policy`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

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


def register(policy_app: typer.Typer) -> None:
    policy_app.command("diff")(policy_diff)

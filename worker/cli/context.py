"""What every CLI command starts from: the settings, validated, and (for commands that
talk to the stack) filled in from the running `handoff dev` stack.

Its own module so `commands`, `crm_setup` and `stalls` all import it at the top, and
none of them imports another back.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console

from worker.cli import exit_codes
from worker.settings import Settings

err = Console(stderr=True, soft_wrap=True)

_followed: list[bool] = []


def load_settings() -> Settings:
    """The settings, or a one-line-per-field message and exit 2 (never a traceback, whose
    locals could show secrets)."""
    try:
        return Settings()
    except ValidationError as exc:
        err.print("[red]Invalid configuration[/]:")
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(settings)"
            err.print(f"  {where}: {e['msg']}", markup=False)
        raise typer.Exit(exit_codes.BAD_INPUT) from None


def stack_settings(crm: str | None, base: Path | None = None) -> Settings:
    """The settings of a command that talks to the stack: what the user set, filled in
    from the running `handoff dev` stack (`worker.cli.follow`), once per process."""
    if not _followed:
        from worker.cli.follow import DEFAULT_BASE, follow_running_stack

        follow_running_stack(crm, err, base or DEFAULT_BASE)
        _followed.append(True)
    return load_settings()

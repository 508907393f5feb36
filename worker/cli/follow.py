"""Commands in a second terminal follow the running `handoff dev` stack.

`handoff dev` writes `.handoff/running.json` (see `worker.stack_file`): its CRM, Temporal
address, task queue and API address. Every command that talks to the stack (`demo`,
`status`, `approve`, `list`, `stuck`, `crm setup`, ...) reads it, so a user who started
`handoff dev --crm salesforce` on moved ports needs no flag in another terminal.

What the user says wins. A `--crm` flag, or a `HANDOFF_CRM` or `TEMPORAL_ADDRESS` (in
the environment or `.env`) that names another CRM or another Temporal than the stack's,
means "not this stack": nothing is taken from it. Otherwise the stack fills in only the
settings the user left unset.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values
from rich.console import Console

from worker.stack_file import RunningStack, read_running

#: The folder `handoff dev` runs from, by default (its `--state-dir`).
DEFAULT_BASE = Path(".handoff")

#: Settings that say which stack the user means; one that differs from the stack's
#: means another stack, so nothing is followed.
IDENTITY = ("HANDOFF_CRM", "TEMPORAL_ADDRESS")


def _explicit() -> dict[str, str]:
    """The settings the user gave: `.env` (as `Settings` reads it), then the environment."""
    try:
        dotenv = {k: v for k, v in dotenv_values(".env").items() if v}
    except OSError:
        dotenv = {}
    return {**dotenv, **{k: v for k, v in os.environ.items() if v}}


def follow_running_stack(
    crm: str | None, notices: Console, base: Path = DEFAULT_BASE
) -> RunningStack | None:
    """Fill in the unset settings from the stack running from `base`; the stack followed,
    or None (none runs, or the user named another one, which `notices` says)."""
    stack = read_running(base)
    if stack is None:
        return None
    given = _explicit()
    wanted = {"HANDOFF_CRM": crm or given.get("HANDOFF_CRM"),
              "TEMPORAL_ADDRESS": given.get("TEMPORAL_ADDRESS")}  # fmt: skip
    for key in IDENTITY:
        theirs, ours = stack.env.get(key), wanted[key]
        if ours is not None and theirs is not None and ours != theirs:
            what = "CRM" if key == "HANDOFF_CRM" else "Temporal"
            notices.print(
                f"[yellow]The running dev stack ({stack.crm}) uses {what} {theirs}, not {ours}"
                f"[/]; using your settings.",
                highlight=False,
            )
            return None
    for key, value in stack.env.items():
        if key not in given:
            os.environ[key] = value
    notices.print(
        f"[dim]Using the running dev stack: {stack.crm}, Temporal "
        f"{stack.env.get('TEMPORAL_ADDRESS', '?')}, state in {stack.state_dir}[/]",
        highlight=False,
    )
    return stack

"""What a running `handoff dev` stack is, written where other terminals can find it.

`handoff dev --state-dir .handoff --crm X` keeps X's state in `.handoff/X/` (so switching
CRMs never sends one CRM's deals to the other) and writes `.handoff/running.json`: the
CRM, its state folder and the settings a client needs to reach that stack (Temporal,
the API, the sandbox). `handoff demo` in a second terminal reads it, so it follows the
running stack instead of defaulting to HubSpot. The file is removed when the stack stops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from worker.state import write_private

RUNNING = "running.json"


class RunningStack(BaseModel):
    """The running dev stack: its CRM, state folder, API and client settings."""

    crm: str
    state_dir: str
    pid: int
    api_url: str
    env: dict[str, str]

    def alive(self) -> bool:
        """Whether the `handoff dev` process that wrote this file still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def crm_state_dir(base: Path, crm: str) -> Path:
    """The state folder of one CRM under the base folder: `.handoff/hubspot`."""
    return base / crm


def write_running(base: Path, stack: RunningStack) -> Path:
    path = base / RUNNING
    write_private(path, stack.model_dump_json(indent=2))
    return path


def read_running(base: Path) -> RunningStack | None:
    """The stack `handoff dev` runs from `base`, or None (none, stopped, or unreadable)."""
    try:
        data: Any = json.loads((base / RUNNING).read_text(encoding="utf-8"))
        stack = RunningStack.model_validate(data)
    except (OSError, ValueError, ValidationError):
        return None
    return stack if stack.alive() else None


def remove_running(base: Path, pid: int) -> None:
    """Remove the file if this process wrote it (a newer stack's file stays)."""
    stack = read_running(base)
    if stack is not None and stack.pid != pid:
        return
    (base / RUNNING).unlink(missing_ok=True)

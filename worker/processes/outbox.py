"""The development outbox: every notice `handoff dev` sends, kept so a person can open it.

In the spirit of MailHog: under `handoff dev` (`HANDOFF_NOTIFIER=dev`) the worker appends
each notice, signed approve/reject links included, to `<state dir>/outbox.jsonl` (0600:
the links are bearer secrets), and the API shows them at `/outbox`, newest first. It is
refused in production: there notices go by email or chat and links never touch disk.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from activities.notify import LogNotifier, Notice
from worker.state import private_file

OUTBOX = "outbox.jsonl"


class SentNotice(BaseModel):
    """A notice as the outbox keeps it: when it was sent, and the notice itself."""

    sent_at: datetime
    notice: Notice


class OutboxNotifier:
    """Logs each notice like `LogNotifier` and appends it to the dev outbox file."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / OUTBOX
        self._log = LogNotifier()
        self._lock = threading.Lock()  # activities run in threads

    def send(self, notice: Notice) -> None:
        self._log.send(notice)
        line = SentNotice(sent_at=datetime.now(UTC), notice=notice).model_dump_json()
        with self._lock:
            private_file(self.path)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


def read_outbox(state_dir: Path, limit: int = 500) -> list[SentNotice]:
    """The notices sent, newest first (a line cut short by a crash is skipped)."""
    try:
        lines = (state_dir / OUTBOX).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    sent = []
    for line in reversed(lines):
        try:
            sent.append(SentNotice.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue
        if len(sent) >= limit:
            break
    return sent

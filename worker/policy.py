"""Which policy a process runs with: `HANDOFF_POLICY`, else the shipped default.

Long-running processes (the API with its webhook ingress, the worker that feeds the
change feed's starts) hold a `PolicySource`, not a `Policy`: every new handoff starts on
the file as it is now, so an edited policy takes effect without a restart. A running
handoff keeps the policy it started with (see `handoff policy apply` to move it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from worker.settings import Settings
from workflows.policy import Policy, PolicyError, default_policy, load_policy

log = structlog.get_logger(__name__)


def load_configured_policy(settings: Settings) -> Policy:
    return load_policy(settings.policy_path) if settings.policy_path else default_policy()


@dataclass
class PolicySource:
    """The current policy of one file, re-read when the file changes.

    A change is seen by the file's modification time, size and inode, checked on each
    `current()` (one `stat`, no read while the file stays the same). An edit that does
    not validate is logged and ignored: the last good policy stays in force, so a typo
    saved mid-edit never stops new handoffs from starting.
    """

    path: Path | None
    _policy: Policy = field(init=False)
    _seen: tuple[int, int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._policy = load_policy(self.path) if self.path else default_policy()
        self._seen = self._stamp()

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicySource:
        return cls(settings.policy_path)

    def _stamp(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Policy:
        """The file's policy now (the last good one while an edit does not validate)."""
        stamp = self._stamp()
        if self.path is None or stamp is None or stamp == self._seen:
            return self._policy
        try:
            fresh = load_policy(self.path)
        except PolicyError as exc:
            log.warning("policy edit ignored", path=str(self.path), error=str(exc))
        else:
            if fresh.version != self._policy.version:
                log.info(
                    "policy reloaded",
                    path=str(self.path),
                    old_version=self._policy.version,
                    version=fresh.version,
                )
            self._policy = fresh
        self._seen = stamp
        return self._policy

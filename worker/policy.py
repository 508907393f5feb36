"""Which policy a process runs with: `HANDOFF_POLICY`, else the shipped default."""

from __future__ import annotations

from worker.settings import Settings
from workflows.policy import Policy, default_policy, load_policy


def load_configured_policy(settings: Settings) -> Policy:
    return load_policy(settings.policy_path) if settings.policy_path else default_policy()

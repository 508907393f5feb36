"""Open handoffs and a new policy file: what each would be asked under it
(`handoff policy simulate`), and moving them onto it (`handoff policy apply --open`)."""

from __future__ import annotations

from temporalio.client import Client

from worker.client import handoffs
from worker.client.people import Moved, each_open
from workflows.names import Msg
from workflows.policy import Policy
from workflows.policy_diff import Simulated, would_ask


async def simulate(client: Client, live: Policy, new: Policy) -> list[Simulated]:
    """Each open handoff: what it is asked under the live policy, and under `new`."""
    return [would_ask(live, new, st) for st in await handoffs.open_statuses(client)]


async def apply_open(client: Client, new: Policy, *, by: str, reason: str) -> list[Moved]:
    """Move every open handoff to `new`; each records the move and who made it."""
    payload = {"policy": new.model_dump(mode="json"), "by": by, "reason": reason}
    return await each_open(client, Msg.APPLY_POLICY, payload)

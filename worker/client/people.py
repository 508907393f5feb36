"""People changes across every open handoff, one client path for the CLI and the API:
`reassign` (someone left) and `away` (out of office with a delegate).

Each open handoff gets the message as a validated update, so it records the stand-in
(later asks of the person go to whoever stands in) and moves what is open now; the
first refusal (the sender may not, a bad payload) stops the run and is raised with its
typed code, as every handoff would refuse it the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from temporalio.client import Client

from worker.client import handoffs
from worker.client.handoffs import HandoffNotFound, HandoffRef
from workflows.messages import DealStatus, Receipt
from workflows.names import Msg

#: How long one handoff may take to answer before the run goes on without it.
UPDATE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Moved:
    """What one handoff did with the message."""

    workflow_id: str
    deal_id: str
    detail: str

    @property
    def moved_something(self) -> bool:
        return not self.detail.endswith(("nothing open; later asks go to them", "send it again"))


def parse_until(text: str) -> datetime:
    """`2026-12-24` (back at the start of that day, UTC) or an ISO 8601 date-time
    (without a zone: UTC). Raises ValueError naming the forms allowed."""
    try:
        if len(text.strip()) == 10:
            return datetime.combine(date.fromisoformat(text.strip()), time(0), UTC)
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--until {text!r}: a date (2026-12-24) or ISO date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def each_open(client: Client, name: str, payload: dict[str, Any]) -> list[Moved]:
    """Send `name` as an update to every open handoff; what each one did."""
    statuses: Sequence[DealStatus] = await handoffs.open_statuses(client)
    done: list[Moved] = []
    for st in statuses:
        try:
            ref = HandoffRef.from_workflow_id(st.workflow_id)
        except HandoffNotFound:  # not a handoff type this process knows
            continue
        try:
            receipt: Receipt = await asyncio.wait_for(
                handoffs.update(client, ref, name, payload), UPDATE_TIMEOUT_S
            )
        except HandoffNotFound:  # it ended meanwhile
            continue
        except TimeoutError:  # no worker answered: say so, go on with the others
            done.append(Moved(st.workflow_id, st.deal_id, "no answer in time: send it again"))
            continue
        done.append(Moved(st.workflow_id, st.deal_id, receipt.detail))
    return done


async def reassign(
    client: Client, *, from_person: str, to_person: str, by: str, reason: str
) -> list[Moved]:
    """Move every open wait, approval and CRM task of `from_person` to `to_person`."""
    payload = {"from_person": from_person, "to_person": to_person, "by": by, "reason": reason}
    return await each_open(client, Msg.REASSIGN, payload)


async def away(
    client: Client, *, person: str, delegate: str, until: datetime, by: str, reason: str
) -> list[Moved]:
    """`person` is away until `until`; `delegate` acts for them in every open handoff."""
    payload = {
        "person": person,
        "delegate": delegate,
        "until": until.isoformat(),
        "by": by,
        "reason": reason,
    }
    return await each_open(client, Msg.SET_AWAY, payload)

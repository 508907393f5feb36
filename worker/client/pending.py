"""Pending approvals, from Temporal visibility: the inbox of every approver.

Running handoffs are found by their search attributes, then each one's `status` is
queried, because visibility is eventually consistent and the status is the truth:
an item is listed only if the workflow itself says the approver is asked now.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError

from workflows.messages import DealStatus
from workflows.names import QUERY_STATUS, WaitingOn

log = structlog.get_logger("handoff.pending")

RUNNING_HANDOFFS = "WorkflowType='LeadToCash' AND ExecutionStatus='Running'"
#: Status queries in flight at once (each is a round trip to a worker).
QUERY_CONCURRENCY = 16
QUERY_TIMEOUT_S = 10.0
#: An email safe inside a visibility query: no quotes, backslashes or spaces.
EMAIL_PATTERN = r"^[^'\"\\\s]{3,254}$"
_EMAIL = re.compile(EMAIL_PATTERN)


class PendingItem(BaseModel):
    """One approval waiting on a decision: which deal, tier, who, since and until when."""

    workflow_id: str
    crm: str
    deal_id: str
    deal_name: str
    round: int
    tier: str
    approvers: list[str]
    asked_at: datetime
    due_at: datetime | None
    age_seconds: float
    escalated: bool
    discount_percent: float
    amount: float
    net_amount: float
    margin_percent: float
    sla_state: str


def valid_email(value: str) -> bool:
    """Safe to put inside a visibility query (no quotes, backslashes or spaces)."""
    return bool(_EMAIL.match(value))


async def _status(client: Client, workflow_id: str, sem: asyncio.Semaphore) -> DealStatus | None:
    async with sem:
        try:
            return await asyncio.wait_for(
                client.get_workflow_handle(workflow_id).query(QUERY_STATUS, result_type=DealStatus),
                QUERY_TIMEOUT_S,
            )
        except (RPCError, TimeoutError) as exc:  # ended meanwhile, or no worker answers
            log.warning("status unavailable", workflow_id=workflow_id, error=str(exc))
            return None


async def open_statuses(client: Client, query: str = RUNNING_HANDOFFS) -> list[DealStatus]:
    """The status of every running handoff matching a visibility `query`."""
    ids = [wf.id async for wf in client.list_workflows(query)]
    sem = asyncio.Semaphore(QUERY_CONCURRENCY)
    found = await asyncio.gather(*(_status(client, wf_id, sem) for wf_id in ids))
    return [st for st in found if st is not None and not st.done]


async def pending_approvals(
    client: Client, approver: str | None = None, now: datetime | None = None
) -> list[PendingItem]:
    """Approvals waiting on a decision (on `approver`'s, if given), oldest first."""
    query = f"{RUNNING_HANDOFFS} AND WaitingOn='{WaitingOn.DISCOUNT_APPROVAL.value}'"
    if approver is not None:
        approver = approver.strip().lower()
        if not valid_email(approver):
            raise ValueError(f"approver {approver!r} is not an email address")
        query += f" AND Owner='{approver}'"
    now = now or datetime.now(UTC)
    items = []
    for st in await open_statuses(client, query):
        p = st.pending_approval
        if p is None or (approver is not None and approver not in p.approvers):
            continue
        items.append(
            PendingItem(
                workflow_id=st.workflow_id,
                crm=st.crm,
                deal_id=st.deal_id,
                deal_name=st.deal_name or st.deal_id,
                round=p.round,
                tier=p.tier,
                approvers=p.approvers,
                asked_at=p.asked_at,
                due_at=p.due_at,
                age_seconds=max((now - p.asked_at).total_seconds(), 0.0),
                escalated=p.escalated,
                discount_percent=p.discount_percent,
                amount=p.amount,
                net_amount=round(p.amount * (1 - p.discount_percent / 100), 2),
                margin_percent=p.margin_percent,
                sla_state=st.sla_state,
            )
        )
    return sorted(items, key=lambda i: i.asked_at)

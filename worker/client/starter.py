"""Starting and signalling lead-to-cash workflows: one way, used by the CLI, the
webhook ingress and the Salesforce change feed.

The workflow ID is deterministic (`lead-to-cash-<crm>-<deal>`) and a closed workflow's
ID is never reused, so starting twice is a no-op and a late event never restarts a
finished handoff.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows import names
from workflows.lead_to_cash import LeadToCash, LeadToCashInput
from workflows.messages import DealStatus
from workflows.policy import Policy


def lead_to_cash_input(crm: str, deal_id: str, policy: Policy) -> LeadToCashInput:
    return LeadToCashInput(crm=crm, deal_id=deal_id, policy=policy, policy_version=policy.version)


async def start_lead_to_cash(
    client: Client, *, crm: str, deal_id: str, policy: Policy, task_queue: str
) -> tuple[WorkflowHandle[LeadToCash, DealStatus], bool]:
    """Start the deal's handoff; returns (handle, started). Already started: a no-op."""
    wf_id = names.lead_to_cash_id(crm, deal_id)
    try:
        handle = await client.start_workflow(
            LeadToCash.run,
            lead_to_cash_input(crm, deal_id, policy),
            id=wf_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(LeadToCash.run, wf_id), False
    return handle, True


async def signal_with_start(
    client: Client,
    *,
    crm: str,
    deal_id: str,
    policy: Policy,
    task_queue: str,
    signal: str,
    payload: Any,
) -> bool:
    """Deliver `signal`, starting the handoff first if needed. False if it already ended."""
    try:
        await client.start_workflow(
            LeadToCash.run,
            lead_to_cash_input(crm, deal_id, policy),
            id=names.lead_to_cash_id(crm, deal_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=signal,
            start_signal_args=[payload],
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def signal_if_running(
    client: Client, crm: str, deal_id: str, signal: str, payload: Any
) -> bool:
    """Signal the deal's handoff if one is running; False when there is none."""
    handle = client.get_workflow_handle(names.lead_to_cash_id(crm, deal_id))
    try:
        await handle.signal(signal, payload)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False
        raise
    return True

"""Starting renewals, alone or continuing a closed lead-to-cash with its context."""

from __future__ import annotations

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows import names
from workflows.lead_to_cash import LeadToCash
from workflows.messages import DealStatus
from workflows.policy import Policy
from workflows.renewal import RenewalExpansion, RenewalInput


async def closed_lead_to_cash(client: Client, crm: str, deal_id: str) -> DealStatus | None:
    """The final status of the deal's completed lead-to-cash, if there is one."""
    wf_id = names.lead_to_cash_id(crm, deal_id)
    try:
        desc = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=wf_id)
            )
        )
        if desc.workflow_execution_info.status != WorkflowExecutionStatus.COMPLETED.value:
            return None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    result: DealStatus = await client.get_workflow_handle_for(LeadToCash.run, wf_id).result()
    return result


async def start_renewal(
    client: Client, *, crm: str, deal_id: str, policy: Policy, task_queue: str
) -> tuple[WorkflowHandle[RenewalExpansion, DealStatus], bool]:
    """Start the deal's renewal; a closed lead-to-cash hands over its terms and approvals.
    Returns (handle, started); starting twice is a no-op."""
    previous = await closed_lead_to_cash(client, crm, deal_id)
    inp = RenewalInput(
        crm=crm,
        deal_id=deal_id,
        policy=policy,
        policy_version=policy.version,
        from_workflow_id=previous.workflow_id if previous else None,
        terms=previous.terms if previous else None,
        approvals=previous.approvals if previous else [],
    )
    wf_id = names.renewal_id(crm, deal_id)
    try:
        handle = await client.start_workflow(
            RenewalExpansion.run,
            inp,
            id=wf_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(RenewalExpansion.run, wf_id), False
    return handle, True

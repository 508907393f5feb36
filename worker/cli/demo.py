"""`handoff demo`: start a sample deal and walk it to the discount-approval wait."""

from __future__ import annotations

import asyncio

from rich.console import Console
from temporalio.client import Client

from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.policy import load_configured_policy
from worker.settings import Settings
from workflows import names, registry
from workflows.names import Msg, WaitingOn

#: The seeded demo deal in every sandbox (and the memory CRM).
DEMO_DEAL = "1001"


async def demo_deal(client: Client, crm: str) -> str:
    """Deal 1001 where the CRM seeds it (memory, HubSpot); on Salesforce, whose ids are
    its own, the first deal the change feed started a handoff for."""
    if crm != "salesforce":
        return DEMO_DEAL
    lead_to_cash = [registry.get(names.LEAD_TO_CASH)]
    query = handoffs.running_query(lead_to_cash, crm=crm, stage=names.Stage.QUALIFY.value)
    for _ in range(60):  # the feed polls every few seconds
        async for wf in client.list_workflows(query, limit=1):
            deal = wf.typed_search_attributes.get(names.DEAL_ID)
            if deal:
                return deal
        await asyncio.sleep(1)
    raise RuntimeError("no Salesforce deal has a handoff yet: is the worker's change feed on?")


async def run_demo(client: Client, settings: Settings, crm: str, out: Console) -> None:
    policy = load_configured_policy(settings)
    deal = await demo_deal(client, crm)
    ref = HandoffRef.of(names.LEAD_TO_CASH, crm, deal)
    handle, started = await handoffs.start(
        client, ref, policy=policy, task_queue=settings.task_queue
    )
    out.print(("Started " if started else "Continuing ") + handle.id)
    owner = policy.people_for("sales_rep")[0]
    for kind in policy.stage(names.Stage.QUALIFY).evidence:
        await handoffs.signal(
            client, ref, Msg.ADD_EVIDENCE, {"kind": kind, "by": owner, "ref": "demo"}
        )
        out.print(f"  evidence {kind} from {owner}")
    for _ in range(150):
        st = await handoffs.status(client, ref)
        if st.waiting_on == WaitingOn.DISCOUNT_APPROVAL and st.pending_approval:
            break
        await asyncio.sleep(0.2)
    else:
        out.print(f"[yellow]The deal is at {st.stage}, waiting on {st.waiting_on}.[/]")
        return
    p = st.pending_approval
    out.print(
        f"\n[bold]Waiting on discount approval[/]: {p.discount_percent:g}% "
        f"(margin {p.margin_percent:g}%), tier {p.tier}, from {', '.join(p.approvers)}, "
        f"due {p.due_at:%Y-%m-%d %H:%M} UTC."
    )
    out.print("\nApprove it with the CLI:")
    out.print(
        f"  handoff approve {deal} --crm {crm} --as {p.approvers[0]} --reason 'Strategic logo'"
    )
    out.print("or with the temporal CLI:")
    out.print(
        f"  temporal workflow signal --workflow-id {handle.id} --name approve "
        f'--input \'{{"approver": "{p.approvers[0]}", "reason": "Strategic logo"}}\''
    )
    out.print(f"Then: handoff status {deal} --crm {crm}")

"""`handoff demo`: create a fresh sample deal and walk it to the discount-approval wait.

Each run creates a new deal in the running stack's CRM (its own id), so the demo can run
again and again; `--deal` walks a deal of your choice instead. The CRM and the Temporal
address come from the running `handoff dev` stack (`worker.cli.follow`), not a default.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError

from connectors.base import FieldValue
from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.policy import load_configured_policy
from worker.processes.crm import make_connector
from worker.settings import Settings
from worker.wording import role
from workflows import names
from workflows.messages import DealStatus
from workflows.names import Msg, WaitingOn
from workflows.policy import Policy

#: The seeded demo deal of the memory CRM, which cannot take new deals from outside.
DEMO_DEAL = "1001"

#: The sandbox account the demo's Salesforce Opportunity belongs to (an Order needs one).
DEMO_ACCOUNT = "Acme Corp"

#: The fresh deal's fields (canonical names): 30% asks the sales manager, then the VP.
DEMO_FIELDS: dict[str, FieldValue] = {
    "amount": 120000,
    "discount_percent": 30,
    "crm_stage": "new",
    "scope": "Platform rollout for 3 sites",
    "start_date": "2026-12-01",
    "site_notes": "Badge access via reception",
    "primary_contact": "ada@acme.example",
    "promised": "Go-live before Q1 close",
    "billing_contact": "ap@acme.example",
    "po_number": "PO-7781",
}


def create_demo_deal(settings: Settings, policy: Policy, crm: str) -> str:
    """A new deal in the CRM, owned by the policy's first sales rep; its id."""
    owner = policy.people_for("sales_rep")[0]
    stamp = datetime.now(UTC)
    fields = {**DEMO_FIELDS, "name": f"Acme Corp demo {stamp:%H:%M:%S}", "owner_email": owner}
    connector = make_connector(settings.model_copy(update={"crm": crm}), policy)
    if crm == "hubspot":
        from connectors.hubspot import HubSpotConnector

        assert isinstance(connector, HubSpotConnector)
        try:
            return connector.create_deal(fields)
        finally:
            connector.close()
    if crm == "salesforce":
        from connectors.salesforce import SalesforceConnector

        assert isinstance(connector, SalesforceConnector)
        close = f"{stamp + timedelta(days=90):%Y-%m-%d}"
        return connector.create_deal(fields, close_date=close, account_name=DEMO_ACCOUNT)
    return DEMO_DEAL


async def _status_when_asked(client: Client, ref: HandoffRef, tries: int = 150) -> DealStatus:
    """The status once the discount approval is asked (or the deal ended), riding out a
    query that times out while the worker is busy starting up."""
    st: DealStatus | None = None
    for attempt in range(tries):
        try:
            st = await handoffs.status(client, ref)
        except (TimeoutError, RPCError):
            if attempt == tries - 1:
                raise
        else:
            if st.done or (st.waiting_on == WaitingOn.DISCOUNT_APPROVAL and st.pending_approval):
                return st
        await asyncio.sleep(0.2)
    assert st is not None
    return st


async def run_demo(
    client: Client, settings: Settings, crm: str, out: Console, deal: str | None = None
) -> None:
    policy = load_configured_policy(settings)
    if deal is None:
        deal = await asyncio.to_thread(create_demo_deal, settings, policy, crm)
        out.print(f"Created deal {deal} in the {crm} CRM", highlight=False)
    ref = HandoffRef.of(names.LEAD_TO_CASH, crm, deal)
    handle, started = await handoffs.start(
        client, ref, policy=policy, task_queue=settings.task_queue
    )
    out.print(("Started " if started else "Continuing ") + handle.id, highlight=False)
    owner = policy.people_for("sales_rep")[0]
    for kind in policy.stage(names.Stage.QUALIFY).evidence:
        await handoffs.signal(
            client, ref, Msg.ADD_EVIDENCE, {"kind": kind, "by": owner, "ref": "demo"}
        )
        out.print(f"  evidence {kind} from {owner}", highlight=False)
    st = await _status_when_asked(client, ref)
    if not (st.waiting_on == WaitingOn.DISCOUNT_APPROVAL and st.pending_approval):
        out.print(
            f"[yellow]Deal {deal} is at {st.stage}, waiting on {st.waiting_on}.[/] "
            "Run `handoff demo` without --deal for a fresh deal.",
            highlight=False,
        )
        return
    p = st.pending_approval
    out.print(
        f"\n[bold]Waiting on discount approval[/]: {p.discount_percent:g}% "
        f"(margin {p.margin_percent:g}%), tier {role(p.tier)}, from {', '.join(p.approvers)}, "
        f"due {p.due_at:%Y-%m-%d %H:%M} UTC.",
        highlight=False,
    )
    out.print("\nApprove it with the CLI:")
    out.print(
        f"  handoff approve {deal} --crm {crm} --as {p.approvers[0]} --reason 'Strategic logo'",
        highlight=False,
    )
    out.print("or with the temporal CLI:")
    out.print(
        f"  temporal workflow signal --workflow-id {handle.id} --name approve "
        f'--input \'{{"approver": "{p.approvers[0]}", "reason": "Strategic logo"}}\'',
        highlight=False,
    )
    out.print(f"Then: handoff status {deal} --crm {crm}", highlight=False)

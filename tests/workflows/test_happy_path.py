"""The full lead-to-cash path on the time-skipping server."""

from __future__ import annotations

from support.handoffs import (
    BILLING,
    MANAGER,
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    give_evidence,
    handoff_worker,
    make_deal,
    signal,
    start,
    until,
)
from temporalio.testing import WorkflowEnvironment

from connectors.memory import MemoryConnector
from workflows.names import Msg, Stage, WaitingOn


async def test_deal_walks_from_lead_to_cash_on_evidence(
    time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """A 30% deal needs the sales manager then the VP, and ends paid with one write each."""
    crm = MemoryConnector([make_deal("D-HAPPY", discount=30)])
    async with handoff_worker(time_env.client, task_queue, crm) as notifier:
        handle = await start(time_env.client, task_queue, "D-HAPPY")
        await until(
            handle, lambda s: s.stage == Stage.QUALIFY and s.waiting_on == WaitingOn.EVIDENCE
        )
        await give_evidence(handle, *QUALIFY_EVIDENCE)

        st = await until(handle, lambda s: s.pending_approval is not None)
        assert st.pending_approval is not None and st.pending_approval.tier == "sales_manager"
        assert st.owner == [MANAGER]
        await signal(handle, Msg.APPROVE, approver=MANAGER, reason="Strategic logo")
        st = await until(
            handle, lambda s: s.pending_approval is not None and s.pending_approval.tier == "vp"
        )
        assert st.owner == [VP]
        await signal(handle, Msg.APPROVE, approver=VP, reason="Multi-year commitment")

        await until(handle, lambda s: s.stage == Stage.CLOSE)
        await give_evidence(handle, "contract_signed")
        await until(handle, lambda s: s.waiting_on == WaitingOn.ACCEPTANCE)
        await signal(handle, Msg.ACCEPT_HANDOFF, team="operations", by=OPS)
        await until(handle, lambda s: s.stage == Stage.DELIVERY)
        await give_evidence(handle, "delivery_confirmed", by=OPS)
        await until(handle, lambda s: s.stage == Stage.CASH)
        await give_evidence(handle, "payment_received", by=BILLING)
        final = await handle.result()

    assert final.done and final.stage == Stage.DONE
    assert [a.tier for a in final.approvals] == ["sales_manager", "vp"]
    deal = crm.get_deal("D-HAPPY")
    assert deal.crm_stage == "closed_won"
    assert deal.fields["handoff_status"] == "complete"
    assert deal.fields["approved_discount"] == "30.0"
    assert deal.fields["real_margin"] == "14.3"  # net 70k, cost 60k
    invoices = crm.records("D-HAPPY", "invoice")
    assert len(invoices) == 1 and invoices[0].data["amount"] == 70_000.0
    notes = [r.data["body"] for r in crm.records("D-HAPPY", "note")]
    assert any("Qualified on evidence" in n for n in notes)
    assert any("Strategic logo" in n for n in notes)
    assert any("Closed won" in n for n in notes)
    assert MANAGER in {to for n in notifier.notices for to in n.to}
    assert OWNER in final.history[0].detail or final.history[0].kind == "started"

"""What the `handoff` CLI shows of a handoff of any type waiting on the sales manager: the
checks tests/cli/test_handoff_types.py runs on a renewal and
tests/scaffold/scaffolded_surfaces.py on a type `handoff new` just made."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from temporalio.client import Client, WorkflowHandle

from support.handoffs import MANAGER
from support.processes import run_handoff
from worker.client.handoffs import HandoffRef, quote


async def approves_with_its_type(address: str, handle: WorkflowHandle[Any, Any]) -> None:
    """`handoff approve <deal> --type <type>` records the sales manager's approval and
    prints the tier asked next (the VP's), and `status --json` shows it at once."""
    ref = HandoffRef.from_workflow_id(handle.id)
    code, text = await run_handoff(
        address, "approve", ref.deal_id, "--type", ref.type.name, "--as", MANAGER,
        "--reason", "Keep the logo", HANDOFF_CRM=ref.crm,
    )  # fmt: skip
    assert code == 0, text
    assert text.startswith("OK") and "next: tier VP, asked of victor.vp@example.com" in text
    # right after `approve` returns, `status` shows the new state (no polling)
    code, text = await run_handoff(address, "status", handle.id, "--json")
    assert code == 0, text
    st = json.loads(text)
    assert [(a["tier"], a["approver"]) for a in st["approvals"]] == [("sales_manager", MANAGER)]
    assert st["pending_approval"]["tier"] == "vp"


async def listed_as_waiting_on_approval(address: str, workflow_id: str) -> None:
    """Wait, in this process, until visibility lists the handoff as waiting on discount
    approval (what `handoff list --waiting-on` and `stuck` filter on): visibility lags a
    moment behind the workflow, and asking three CLI processes per try cost ~2 s of CPU."""
    client = await Client.connect(address)
    query = f"WorkflowId = {quote(workflow_id)} AND WaitingOn = 'discount_approval'"
    for _ in range(300):  # 60 s or more: a condition, not a speed
        if [wf async for wf in client.list_workflows(query)]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} never listed as waiting on discount_approval")


async def shows_in_status_list_and_stuck(address: str, handle: WorkflowHandle[Any, Any]) -> None:
    """`status <workflow id>` needs no --type, `status <deal> --type` finds it too, and
    `list` (also filtered by type) and `stuck` show it with its type."""
    ref = HandoffRef.from_workflow_id(handle.id)
    kind, deal_id = ref.type.name, ref.deal_id
    code, text = await run_handoff(address, "status", handle.id, "--json")
    assert code == 0, text
    st = json.loads(text)
    assert (st["workflow_id"], st["workflow_type"]) == (handle.id, ref.type.workflow_type)
    assert st["pending_approval"]["tier"] == "sales_manager"
    code, text = await run_handoff(address, "status", deal_id, "--type", kind, "--crm", ref.crm)
    assert code == 0 and f"type        {kind}" in text, text
    await listed_as_waiting_on_approval(address, handle.id)
    for _ in range(10):  # listed now; the CLI's own queries may still lag a moment
        (c1, listed), (c2, only), (c3, board) = await asyncio.gather(
            run_handoff(address, "list"),
            run_handoff(address, "list", "--type", kind, "--waiting-on", "discount_approval"),
            run_handoff(address, "stuck"),
        )
        if handle.id in listed and handle.id in only and f"{kind} {ref.crm}/{deal_id}" in board:
            break
        await asyncio.sleep(0.3)
    assert (c1, c2, c3) == (0, 0, 0)
    row = next(line for line in listed.splitlines() if handle.id in line)
    assert kind in row.split(handle.id, 1)[1] and "discount_approval" in row
    assert handle.id in only and "lead-to-cash-" not in only
    assert f"{kind} {ref.crm}/{deal_id}" in board

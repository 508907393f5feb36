"""Unexpected CRM answers (a 200 that is HTML, a list, a record without properties) are
`Rejected` at the connector, non-retryable at the activity, and park the handoff on
`crm_write_failed` instead of retrying forever."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.faults import OWNER, QUALIFY, hubspot_deal, hubspot_store, status_or_none
from support.handoffs import tolerant_of_load
from support.hubspot import HubSpotSandbox, running_sandbox
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.crm import CrmActivities, DealRef
from connectors.base import NoteSpec
from connectors.errors import PermanentCrmError, Rejected
from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.processes.worker import build_worker
from workflows.messages import DealStatus
from workflows.names import Msg, lead_to_cash_id
from workflows.policy import default_policy
from workflows.records import ExceptionRecord

SHAPES = ["not_json", "list", "no_properties"]
SALES_OPS = "sol.salesops@example.com"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[HubSpotSandbox]:
    with running_sandbox(hubspot_store(tmp_path / "hubspot.sqlite3")) as sb:
        yield sb


def malform(sandbox: HubSpotSandbox, shape: str, count: int = 1) -> None:
    sandbox.control("POST", "malformed", {"count": count, "shape": shape})


@pytest.mark.parametrize("shape", SHAPES)
def test_a_deal_read_of_the_wrong_shape_is_rejected(sandbox: HubSpotSandbox, shape: str) -> None:
    """get_deal on a 200 that is not a deal raises Rejected naming the deal, not a raw error."""
    deal = hubspot_deal(sandbox, "Odd read")
    malform(sandbox, shape)
    with pytest.raises(Rejected) as info:
        sandbox.connector(max_retries=0).get_deal(deal)
    assert isinstance(info.value, PermanentCrmError)
    assert info.value.record_id == deal
    assert "unexpected response" in str(info.value)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_write_answered_with_the_wrong_shape_is_rejected_and_repeats_cleanly(
    sandbox: HubSpotSandbox, shape: str
) -> None:
    """A note upsert answered oddly raises Rejected; writing it again leaves one note."""
    deal = hubspot_deal(sandbox, "Odd write")
    connector = sandbox.connector(max_retries=0)
    note = NoteSpec(body=f"Evidence summary ({shape})", key=f"odd:{shape}:note:0")
    malform(sandbox, shape)
    with pytest.raises(Rejected):
        connector.add_note(deal, note)
    connector.add_note(deal, note)
    assert [n["handoff_key"] for n in sandbox.activity(deal)["notes"]] == [note.key]


@pytest.mark.parametrize("shape", SHAPES)
async def test_the_activity_turns_a_wrong_shape_into_a_non_retryable_error(
    sandbox: HubSpotSandbox, shape: str
) -> None:
    """At the activity level the Rejected answer is an ApplicationError Temporal won't retry."""
    deal = hubspot_deal(sandbox, "Odd activity")
    activities = CrmActivities(sandbox.connector(max_retries=0))
    malform(sandbox, shape)
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(activities.get_deal, DealRef(deal_id=deal))
    assert info.value.non_retryable
    assert info.value.type == "Rejected"


@pytest.mark.integration
async def test_a_transition_write_answered_oddly_parks_the_handoff_until_resolved(
    dev_env: WorkflowEnvironment, sandbox: HubSpotSandbox, task_queue: str
) -> None:
    """The handoff parks on crm_write_failed (no retry loop); resolving it writes once."""
    client = dev_env.client
    deal = hubspot_deal(sandbox, "Odd handoff")
    async with tolerant_of_load(
        build_worker(client, task_queue=task_queue, connector=sandbox.connector())
    ):
        handle, _ = await handoffs.start(
            client,
            HandoffRef.of("lead-to-cash", "hubspot", deal),
            policy=default_policy(),
            task_queue=task_queue,
        )
        await _until(handle, lambda st: st.waiting_on == "evidence" and st.stage == "qualify")
        await _until_task(sandbox, deal, f"{handle.id}:qualify:task:{OWNER}")
        malform(sandbox, "list")  # the next call is the PATCH of the close transition
        for kind in QUALIFY:
            await handle.signal(Msg.ADD_EVIDENCE, {"kind": kind, "by": OWNER})
        parked = await _until(handle, lambda st: bool(_open(st, "crm_write_failed")))
        exc = _open(parked, "crm_write_failed")[0]
        assert "failed permanently" in exc.note
        assert "unexpected response" in exc.note
        assert exc.owner == [SALES_OPS]
        desc = await handle.describe()
        assert desc.status is not None
        assert desc.status.name == "RUNNING"

        await handle.signal(
            Msg.RESOLVE_EXCEPTION, {"kind": "crm_write_failed", "by": SALES_OPS, "note": "ok"}
        )
        st = await _until(
            handle, lambda st: st.stage == "close" and not _open(st, "crm_write_failed")
        )
        await _until_task(sandbox, deal, f"{handle.id}:close:t0:task:{OWNER}")
        notes = [n["handoff_key"] for n in sandbox.activity(deal)["notes"]]
        assert notes == [f"{lead_to_cash_id('hubspot', deal)}:close:t0:note:0"]
        assert st.waiting_on == "evidence"
        await handle.terminate("test finished")


def _open(st: DealStatus, kind: str) -> list[ExceptionRecord]:
    return [e for e in st.exceptions if e.kind == kind and e.resolved_at is None]


async def _until(
    handle: WorkflowHandle[Any, Any], check: Callable[[DealStatus], bool], within_s: float = 30
) -> DealStatus:
    st = None
    for _ in range(int(within_s / 0.2)):
        st = await status_or_none(handle)
        if st is not None and check(st):
            return st
        await asyncio.sleep(0.2)
    raise AssertionError(f"status never matched: {st}")


async def _until_task(sandbox: HubSpotSandbox, deal: str, key: str, within_s: float = 30) -> None:
    for _ in range(int(within_s / 0.2)):
        if key in [t["handoff_key"] for t in sandbox.activity(deal)["tasks"]]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {key} never written")

"""Refusals a surface makes before any message reaches the deal are in its audit trail.

A signed link already used, forwarded to someone else, or spent on another API replica,
and a web form that fails its CSRF check, are refused by the page, and the refusal is
recorded in the deal's `status.history` (kept apart, counted in `refusals_total`) with
who tried, what and why. Each case also checks that nothing else changed. A tampered
link names no deal that can be trusted, and a GET never writes: neither is recorded.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api import (
    LINK_SECRET,
    TOKENS,
    api_client,
    deal_at_tier,
    link_for,
    links_sent_to,
    make_settings,
    path_of,
    same_state,
)
from support.handoffs import MANAGER, OWNER, VP, status, until
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from worker.http.auth import SESSION_COOKIE
from worker.http.links import SignedLinks
from worker.settings import Settings
from workflows.messages import DealStatus, HistoryEntry, Receipt
from workflows.names import Msg, Refusal


async def refused_after(
    handle: WorkflowHandle[Any, Any], before: DealStatus, count: int = 1
) -> tuple[DealStatus, list[HistoryEntry]]:
    """The status once `count` more refusals are recorded, and those refusals; nothing
    else may have changed."""
    st = await until(handle, lambda s: s.refusals_total >= before.refusals_total + count)
    assert st.refusals_total == before.refusals_total + count
    assert same_state(before, st), "a refusal changed more than the audit trail"
    seen = {(h.at, h.detail) for h in before.history}
    new = [h for h in st.history if h.kind == "refused" and (h.at, h.detail) not in seen]
    assert len(new) == count
    assert all(not h.accepted for h in new)
    return st, new


async def test_a_forwarded_link_is_refused_and_recorded_with_who_and_why(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The manager's link, used by the owner signed in as themselves: 403, and the
    deal's history says the owner tried to approve with a link sent to the manager."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = path_of(links_sent_to(notifier, MANAGER)["approve"])
        before = await status(handle)
        http.cookies.set(SESSION_COOKIE, TOKENS[OWNER])
        r = await http.post(link, data={"reason": "forwarded to me"})
        http.cookies.clear()
        assert r.status_code == 403
        st, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (OWNER, Refusal.NOT_AUTHORISED)
        assert entry.detail.startswith(f"{Msg.APPROVE} refused: a signed link sent to {MANAGER}")
        assert f"signed in as {OWNER}" in entry.detail
        assert entry.detail.endswith("(via signed link)")
        assert st.approvals == []


async def test_a_link_for_someone_not_asked_is_recorded_as_theirs(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A genuine reject link bound to the VP, used while the manager's tier is asked:
    403, recorded as the VP's refused reject, naming who is asked."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        before = await status(handle)
        link = link_for(settings, before, handle.id, VP, "reject")
        r = await http.post(link, data={"reason": "no"})
        assert r.status_code == 403
        _, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (VP, Refusal.NOT_AUTHORISED)
        assert entry.detail.startswith(f"{Msg.REJECT} refused: a signed link sent to {VP}")
        assert f"asked: {MANAGER}" in entry.detail


async def test_a_reused_link_is_refused_and_recorded_with_who_and_why(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A spent link posted again: 410, recorded as a duplicate by the link's approver.
    Following it (GET) is refused too, and writes nothing."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = path_of(links_sent_to(notifier, MANAGER)["approve"])
        assert (await http.post(link, data={"reason": "Anchor customer"})).status_code == 200
        before = await until(handle, lambda s: len(s.approvals) == 1)

        assert (await http.get(link)).status_code == 410
        assert (await status(handle)).refusals_total == before.refusals_total

        again = await http.post(link, data={"reason": "twice"})
        assert again.status_code == 410
        st, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (MANAGER, Refusal.DUPLICATE)
        assert entry.detail.startswith(f"{Msg.APPROVE} refused: a signed link sent to {MANAGER}")
        assert "already used" in entry.detail
        assert [(a.approver, a.reason) for a in st.approvals] == [(MANAGER, "Anchor customer")]


async def test_an_expired_link_is_refused_and_recorded(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A genuine link past its TTL (its signature still verifies, so its deal is known):
    410, recorded as the approver's refused reject, saying when it expired."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = path_of(links_sent_to(notifier, MANAGER)["reject"])
        before = await status(handle)
        later = time.time() + timedelta(hours=settings.link_ttl_hours, minutes=1).total_seconds()
        http.app.state.links = SignedLinks(  # type: ignore[attr-defined]
            LINK_SECRET, public_url=settings.public_url, state_dir=settings.state_dir,
            clock=lambda: later,
        )  # fmt: skip
        assert (await http.post(link, data={"reason": "late"})).status_code == 410
        st, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (MANAGER, Refusal.NOT_PENDING)
        assert entry.detail.startswith(f"{Msg.REJECT} refused: a signed link sent to {MANAGER}")
        assert "expired at" in entry.detail
        assert st.approvals == []


async def test_a_link_spent_on_one_replica_is_refused_on_another_and_recorded(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Two API replicas with their own used-link stores: the link decides once on the
    first; the second sees the tier decided in the deal's workflow (409) and records it."""
    first, second = make_settings(tmp_path / "a"), make_settings(tmp_path / "b")
    async with (
        deal_at_tier(dev_env.client, task_queue, first) as (handle, _, notifier),
        api_client(first, dev_env.client) as replica_a,
        api_client(second, dev_env.client) as replica_b,
    ):
        link = path_of(links_sent_to(notifier, MANAGER)["approve"])
        assert (await replica_a.post(link, data={"reason": "Anchor customer"})).status_code == 200
        before = await until(handle, lambda s: len(s.approvals) == 1)

        r = await replica_b.post(link, data={"reason": "once more"})
        assert r.status_code == 409
        st, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (MANAGER, Refusal.NOT_PENDING)
        assert "sales_manager tier was already decided" in entry.detail
        assert len(st.approvals) == 1


async def test_a_signed_link_decides_once_whichever_replica_serves_it(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings
) -> None:
    """The deal's workflow remembers used link ids: a link id used again, even by an
    approver who is asked now, is a duplicate, recorded, and nothing else changes."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        payload = {"approver": MANAGER, "reason": "ok", "link_id": "lnk-1"}
        await handle.execute_update(Msg.APPROVE, payload, result_type=Receipt)
        before = await until(handle, lambda s: s.pending_approval is not None and s.approvals)
        assert before.pending_approval is not None and before.pending_approval.tier == "vp"
        payload = {"approver": VP, "reason": "again", "link_id": "lnk-1"}
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(Msg.APPROVE, payload, result_type=Receipt)
        assert isinstance(caught.value.cause, ApplicationError)
        assert caught.value.cause.details[0] == Refusal.DUPLICATE
        st, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (VP, Refusal.DUPLICATE)
        assert "already been used" in entry.detail
        assert [a.tier for a in st.approvals] == ["sales_manager"]


async def test_a_tampered_link_is_refused_and_never_recorded(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A link whose signature does not verify names no deal that can be trusted: 403,
    logged and counted by the API, and the deal's trail is untouched."""
    async with deal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = path_of(links_sent_to(notifier, MANAGER)["approve"])
        before = await status(handle)
        prefix, body, sig = link.split(".")
        flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        r = await http.post(f"{prefix}.{body}.{flipped}", data={"reason": "forged"})
        assert r.status_code == 403
        metrics = http.app.state.metrics  # type: ignore[attr-defined]
        counted = metrics.registry.get_sample_value(
            "handoff_api_link_refusals_total", {"why": "tampered"}
        )
        assert counted == 1
        # the genuine link still decides: the refusal reached nothing
        assert (await http.post(link, data={"reason": "ok"})).status_code == 200
        st = await until(handle, lambda s: len(s.approvals) == 1)
        assert st.refusals_total == before.refusals_total


async def test_a_forged_web_form_is_refused_and_recorded_with_who_and_why(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A decision posted without the session's CSRF token: 403, recorded as the
    signed-in manager's refused approve with the reason; nothing else changed."""
    async with deal_at_tier(dev_env.client, task_queue, settings, discount=20) as (handle, _, _):
        deal_id = handle.id.split("-", 4)[-1]
        before = await status(handle)
        http.cookies.set(SESSION_COOKIE, TOKENS[MANAGER])
        page = await http.get(f"/deals/memory/{deal_id}")
        assert re.search(r'name="csrf" value="([0-9a-f]+)"', page.text) is not None
        forged = await http.post(
            f"/deals/memory/{deal_id}/decide",
            data={"decision": "approve", "reason": "x", "csrf": "00"},
        )
        http.cookies.clear()
        assert forged.status_code == 403
        st, [entry] = await refused_after(handle, before)
        assert (entry.by, entry.code) == (MANAGER, Refusal.NOT_AUTHORISED)
        assert entry.detail == (
            f"{Msg.APPROVE} refused: the form was stale or forged (CSRF check failed) "
            "(via web page)"
        )
        assert st.approvals == []

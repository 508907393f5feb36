"""Every surface reaches every handoff type: a renewal waiting on the sales manager is
listed, shown, approved and linked like a lead-to-cash deal, at its typed address. The
checks are shared helpers (tests/support/api.py), which a scaffolded type passes too
(tests/scaffold/scaffolded_surfaces.py)."""

from __future__ import annotations

import time

import httpx
from support.api import (
    LINK_SECRET,
    approves_by_its_signed_link,
    approves_from_its_page,
    approves_through_its_typed_route,
    bearer,
    renewal_at_tier,
    shows_in_inbox_and_on_board,
)
from support.handoffs import MANAGER, status
from temporalio.testing import WorkflowEnvironment

from worker.http.links import LinkClaims, SignedLinks
from worker.settings import Settings
from workflows import registry


async def test_a_renewal_is_approved_through_its_typed_api_route(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """POST /api/handoffs/renewal/... approves the renewal; the lead-to-cash route says 404."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        await approves_through_its_typed_route(http, handle)


async def test_an_unknown_type_in_the_path_is_404(
    dev_env: WorkflowEnvironment, http: httpx.AsyncClient
) -> None:
    """A type that is not registered is an unknown handoff, with the allowed names."""
    r = await http.get("/api/handoffs/upsell/memory/1/status", headers=bearer(MANAGER))
    assert r.status_code == 404
    assert f"allowed: {', '.join(registry.type_names())}" in r.json()["reason"]


async def test_a_renewal_is_in_the_approvals_inbox_and_on_the_stall_board(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The manager's approvals and inbox list the renewal; the board shows it by type."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        await shows_in_inbox_and_on_board(http, handle)


async def test_a_renewal_is_approved_from_its_page(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The renewal's page offers the manager the decision; posting it approves the renewal."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        await approves_from_its_page(http, handle)


async def test_a_renewals_signed_link_approves_the_renewal(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The link in the renewal's notice carries its workflow id and approves that renewal."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        await approves_by_its_signed_link(http, handle, notifier)


async def test_a_link_decides_only_the_handoff_its_workflow_id_names(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """Signed claims whose deal disagrees with their workflow id are refused (403); claims
    naming the deal's lead-to-cash never reach its renewal (404). Nothing changes."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        deal_id = handle.id.removeprefix("renewal-memory-")
        pending = (await status(handle)).pending_approval
        assert pending is not None
        links = SignedLinks(
            LINK_SECRET, public_url="http://testserver", state_dir=settings.state_dir
        )
        claims = LinkClaims(
            id="t-1",
            approver=MANAGER,
            workflow_id=handle.id,
            crm="memory",
            deal_id="someone-else",
            round=pending.round,
            tier=pending.tier,
            decision="approve",
            expires=int(time.time()) + 3600,
        )
        mismatched = await http.post(f"/links/{links.sign(claims)}", data={"reason": "x"})
        assert mismatched.status_code == 403
        other_type = claims.model_copy(
            update={
                "id": "t-2",
                "deal_id": deal_id,
                "workflow_id": f"lead-to-cash-memory-{deal_id}",
            }
        )
        r = await http.post(f"/links/{links.sign(other_type)}", data={"reason": "x"})
        assert r.status_code == 404
        assert (await status(handle)).approvals == []

"""Every surface reaches every handoff type: a renewal waiting on the sales manager is
listed, shown, approved and linked like a lead-to-cash deal, at its typed address."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from api.helpers import (
    LINK_SECRET,
    TOKENS,
    bearer,
    links_sent_to,
    path_of,
    renewal_at_tier,
    typed_path,
)
from support.handoffs import MANAGER, OWNER, status, until
from temporalio.testing import WorkflowEnvironment

from worker.http.links import LinkClaims, SignedLinks
from worker.settings import Settings


async def sign_in(http: httpx.AsyncClient, email: str) -> None:
    r = await http.post("/login", data={"token": TOKENS[email], "next": "/inbox"})
    assert r.status_code == 303


async def test_a_renewal_is_approved_through_its_typed_api_route(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """POST /api/handoffs/renewal/... approves the renewal; the lead-to-cash route says 404."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        deal_id = handle.id.removeprefix("renewal-memory-")
        wrong_type = await http.post(
            f"/api/deals/memory/{deal_id}/approve", headers=bearer(MANAGER), json={"reason": "x"}
        )
        assert wrong_type.status_code == 404
        assert "lead-to-cash" in wrong_type.json()["reason"]
        r = await http.post(
            typed_path(handle, "approve"), headers=bearer(MANAGER), json={"reason": "Keep the logo"}
        )
        assert r.status_code == 200, r.text
        st = await until(handle, lambda s: bool(s.approvals))
        assert [(a.approver, a.reason) for a in st.approvals] == [(MANAGER, "Keep the logo")]
        got = await http.get(typed_path(handle, "status"), headers=bearer(MANAGER))
        assert got.status_code == 200
        assert got.json()["workflow_id"] == handle.id
        assert got.json()["workflow_type"] == "RenewalExpansion"


async def test_an_unknown_type_in_the_path_is_404(
    dev_env: WorkflowEnvironment, http: httpx.AsyncClient
) -> None:
    """A type that is not registered is an unknown handoff, with the allowed names."""
    r = await http.get("/api/handoffs/upsell/memory/1/status", headers=bearer(MANAGER))
    assert r.status_code == 404
    assert "allowed: lead-to-cash, renewal" in r.json()["reason"]


async def test_a_renewal_is_in_the_approvals_inbox_and_on_the_stall_board(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The manager's approvals and inbox list the renewal; the board shows it by type."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        deal_id = handle.id.removeprefix("renewal-memory-")
        items: list[dict[str, str]] = []
        for _ in range(50):  # visibility lags a moment behind the workflow
            r = await http.get(  # one's own approvals (others' are out of scope)
                "/api/approvals", params={"approver": MANAGER}, headers=bearer(MANAGER)
            )
            items = [i for i in r.json() if i["workflow_id"] == handle.id]
            if items:
                break
            await asyncio.sleep(0.2)
        assert [(i["type"], i["tier"]) for i in items] == [("renewal", "sales_manager")]

        board = (await http.get("/api/stuck", headers=bearer(OWNER))).json()
        lines = [i for g in board["groups"] for i in g["items"] if i["workflow_id"] == handle.id]
        assert [(i["type"], i["waiting_on"]) for i in lines] == [("renewal", "discount_approval")]

        await sign_in(http, MANAGER)
        inbox = await http.get("/inbox")
        card = re.search(rf'data-deal="{deal_id}" data-type="(\w+)"', inbox.text)
        assert card is not None and card[1] == "renewal"
        assert f'action="/handoffs/renewal/memory/{deal_id}/decide"' in inbox.text
        stuck = await http.get("/stuck")
        assert f'href="/handoffs/renewal/memory/{deal_id}"' in stuck.text
        http.cookies.clear()


async def test_a_renewal_is_approved_from_its_page(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The renewal's page offers the manager the decision; posting it approves the renewal."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        deal_id = handle.id.removeprefix("renewal-memory-")
        await sign_in(http, MANAGER)
        page = await http.get(f"/handoffs/renewal/memory/{deal_id}")
        assert page.status_code == 200
        assert "Your decision: sales manager tier" in page.text and handle.id in page.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        r = await http.post(
            f"/handoffs/renewal/memory/{deal_id}/decide",
            data={"decision": "approve", "reason": "Renew", "csrf": csrf[1]},
        )
        assert r.status_code in (200, 303), r.text
        st = await until(handle, lambda s: bool(s.approvals))
        assert [a.approver for a in st.approvals] == [MANAGER]
        http.cookies.clear()


async def test_a_renewals_signed_link_approves_the_renewal(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The link in the renewal's notice carries its workflow id and approves that renewal."""
    async with renewal_at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = path_of(links_sent_to(notifier, MANAGER)["approve"])
        r = await http.post(link, data={"reason": "Renew for three years"})
        assert r.status_code == 200, r.text
        st = await until(handle, lambda s: bool(s.approvals))
        assert [(a.approver, a.reason) for a in st.approvals] == [
            (MANAGER, "Renew for three years")
        ]


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

"""Web pages: sign-in, CSRF on every state change, and decisions as the signed-in user."""

from __future__ import annotations

import re

import httpx
from support.api import TOKENS, deal_at_tier
from support.handoffs import MANAGER, OWNER, status, until
from temporalio.testing import WorkflowEnvironment

from worker.settings import Settings


async def sign_in(http: httpx.AsyncClient, email: str) -> None:
    r = await http.post("/login", data={"token": TOKENS[email], "next": "/inbox"})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


async def test_pages_redirect_to_sign_in_and_refuse_a_wrong_token(
    dev_env: WorkflowEnvironment, http: httpx.AsyncClient
) -> None:
    """Unauthenticated pages go to /login; a wrong token is refused there with 401."""
    r = await http.get("/inbox")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/inbox"
    r = await http.post("/login", data={"token": "wrong", "next": "//evil.example"})
    assert r.status_code == 401
    assert "That token is not valid" in r.text
    r = await http.post("/login", data={"token": TOKENS[OWNER], "next": "//evil.example"})
    assert r.headers["location"] == "/inbox"  # never an off-site redirect
    http.cookies.clear()


async def test_forged_form_changes_nothing_and_a_real_one_decides(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """Without the session's CSRF token the decision is refused; with it, it is recorded."""
    async with deal_at_tier(dev_env.client, task_queue, settings, discount=20) as (handle, _, _):
        deal_id = handle.id.split("-", 4)[-1]
        await sign_in(http, MANAGER)
        page = await http.get(f"/deals/memory/{deal_id}")
        assert page.status_code == 200
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert match is not None
        url = f"/deals/memory/{deal_id}/decide"
        forged = await http.post(url, data={"decision": "approve", "reason": "x", "csrf": "00"})
        assert forged.status_code == 403
        assert "CSRF check failed" in forged.text
        assert (await status(handle)).approvals == []
        empty = await http.post(url, data={"decision": "approve", "reason": " ", "csrf": match[1]})
        assert empty.status_code == 422
        ok = await http.post(
            url, data={"decision": "approve", "reason": "Good fit", "csrf": match[1]}
        )
        assert ok.status_code == 200
        assert "Your decision was recorded: approved" in ok.text
        assert 'class="card outcome"' in ok.text
        st = await until(handle, lambda s: bool(s.approvals))
        assert [(a.approver, a.reason) for a in st.approvals] == [(MANAGER, "Good fit")]
        http.cookies.clear()


async def test_owner_deciding_from_the_deal_page_is_refused_with_the_reason(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The deal owner sees no decision form, and a posted one is refused with 403."""
    async with deal_at_tier(dev_env.client, task_queue, settings, discount=20) as (handle, _, _):
        deal_id = handle.id.split("-", 4)[-1]
        await sign_in(http, OWNER)
        page = await http.get(f"/deals/memory/{deal_id}")
        assert "Your decision" not in page.text
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert match is not None
        r = await http.post(
            f"/deals/memory/{deal_id}/decide",
            data={"decision": "approve", "reason": "mine", "csrf": match[1]},
        )
        assert r.status_code == 403
        assert f"{OWNER} is not an approver" in r.text
        assert (await status(handle)).approvals == []
        http.cookies.clear()

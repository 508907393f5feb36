"""A manager signs in, approves from the inbox with a reason, and sees the deal's timeline.

The CRM here is the in-memory connector (the HubSpot connector has not landed yet), so
the write-back is checked on its records.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser
from support.api import TOKENS, deal_at_tier, make_settings
from support.handoffs import MANAGER, polls, status, until
from temporalio.testing import WorkflowEnvironment

from workflows.names import Stage

from .conftest import ARTIFACTS, free_port, serve

pytestmark = pytest.mark.browser

REASON = "Strategic logo, three-year commitment"


async def test_manager_approves_from_the_inbox_and_sees_the_timeline(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path, browser: Browser
) -> None:
    """Sign in, approve with a reason, land on the deal page showing the decision."""
    port = free_port()
    settings = make_settings(tmp_path, api_port=port, public_url=f"http://127.0.0.1:{port}")
    async with (
        deal_at_tier(dev_env.client, task_queue, settings, discount=20) as (handle, crm, _),
        asynccontextmanager(serve)(settings, dev_env.client) as base,
    ):
        deal_id = handle.id.split("-", 4)[-1]
        page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        await page.goto(f"{base}/inbox")
        assert "/login" in page.url
        await page.fill("#token", TOKENS[MANAGER])
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/inbox")

        card = page.locator(f"section.item[data-deal='{deal_id}']")
        async for _ in polls():  # visibility lags a moment behind the workflow
            if await card.count():
                break
            await asyncio.sleep(0.2)
            await page.reload()
        assert await card.count() == 1
        assert "20% on 100,000.00" in await card.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "1-inbox.png"), full_page=True)

        await card.locator("textarea[name=reason]").fill(REASON)
        await card.locator("button[value=approve]").click()
        await page.wait_for_url(f"{base}/handoffs/lead-to-cash/memory/{deal_id}/decide")
        timeline = page.locator("ol.timeline")
        assert f"sales manager: approved — {REASON}" in await timeline.inner_text()
        assert "Your decision was recorded" in await page.inner_text("main")
        await page.screenshot(path=str(ARTIFACTS / "2-deal.png"), full_page=True)

        st = await until(handle, lambda s: s.stage == Stage.CLOSE)
        assert [(a.approver, a.reason) for a in st.approvals] == [(MANAGER, REASON)]
        async for _ in polls(every=0.1):  # the deal desk note is written when the close wait starts
            notes = [str(r.data["body"]) for r in crm.records(deal_id, "note")]
            if any(REASON in n for n in notes):
                break
            await asyncio.sleep(0.1)
        assert any(REASON in n for n in notes)
        assert crm.get_deal(deal_id).fields["approved_discount"] == "20.0"

        await page.goto(f"{base}/inbox")
        assert await page.locator(f"section.item[data-deal='{deal_id}']").count() == 0
        await page.screenshot(path=str(ARTIFACTS / "3-inbox-empty.png"), full_page=True)
        assert (await status(handle)).pending_approval is None

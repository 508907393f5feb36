"""Right after Approve in the inbox, the page shows the outcome the workflow returned: the
next tier asked, or after the last tier the next stage, and never the decided form again."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from support.api import TOKENS, deal_at_tier, make_settings
from support.handoffs import MANAGER, VP, polls
from temporalio.testing import WorkflowEnvironment

from workflows.names import Stage

from .conftest import ARTIFACTS, free_port, serve

pytestmark = pytest.mark.browser


async def approve_from_inbox(page: Page, base: str, who: str, deal_id: str, reason: str) -> None:
    """Sign in as `who`, find the deal's card in the inbox and click Approve."""
    await page.context.clear_cookies()
    await page.goto(f"{base}/login?next=/inbox")
    await page.fill("#token", TOKENS[who])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/inbox")
    card = page.locator(f"section.item[data-deal='{deal_id}']")
    async for _ in polls():  # visibility lags a moment behind the workflow
        if await card.count():
            break
        await asyncio.sleep(0.2)
        await page.reload()
    assert await card.count() == 1, f"{who} has no inbox item for {deal_id}"
    await card.locator("textarea[name=reason]").fill(reason)
    await card.locator("button[value=approve]").click()
    await page.wait_for_load_state()


async def test_approve_shows_the_next_tier_then_the_next_stage(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path, browser: Browser
) -> None:
    """30% needs the manager then the VP: after the manager's click the page names the VP
    tier and offers no form; after the VP's, it names the close stage."""
    port = free_port()
    settings = make_settings(tmp_path, api_port=port, public_url=f"http://127.0.0.1:{port}")
    async with (
        deal_at_tier(dev_env.client, task_queue, settings, discount=30) as (handle, _, _),
        asynccontextmanager(serve)(settings, dev_env.client) as base,
    ):
        deal_id = handle.id.split("-", 4)[-1]
        page = await browser.new_page(viewport={"width": 1280, "height": 900})

        await approve_from_inbox(page, base, MANAGER, deal_id, "Strategic logo")
        outcome = page.locator("section.outcome")
        assert await outcome.count() == 1
        assert await outcome.locator(".next-tier").count() == 1
        assert await outcome.locator(".next-tier").get_attribute("data-tier") == "vp"
        assert "Next: the VP tier, asked of victor.vp@example.com" in await outcome.inner_text()
        assert await page.locator("form.decide").count() == 0  # nothing left for the manager
        assert await page.locator("button[value=approve]").count() == 0
        await page.screenshot(path=str(ARTIFACTS / "outcome-1-next-tier.png"), full_page=True)

        await approve_from_inbox(page, base, VP, deal_id, "Three-year term")
        outcome = page.locator("section.outcome")
        assert await outcome.count() == 1
        assert await outcome.locator(".next-tier").count() == 0
        assert await outcome.locator(".next-stage").get_attribute("data-stage") == Stage.CLOSE
        assert "the deal is now at close" in await outcome.inner_text()
        assert await page.locator("button[value=approve]").count() == 0
        await page.screenshot(path=str(ARTIFACTS / "outcome-2-next-stage.png"), full_page=True)

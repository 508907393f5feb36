"""The stall analytics page in Chromium: figures of the seeded handoffs, the filters,
the CSV download, an owner named like a script shown as text, and no other origin.

Screenshots go to test-artifacts/browser/; with HANDOFF_DOCS_SCREENSHOTS=1 they also
replace the ones docs/stall-analytics.md shows (docs/images/).
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, Route
from pydantic import SecretStr
from support.api import TOKENS, make_settings
from support.handoffs import SALES_OPS
from support.stall_events import EVENTS, EVIL, VICTOR
from temporalio.testing import WorkflowEnvironment

from worker.stalls.store import open_store

from .conftest import ARTIFACTS, free_port, serve

pytestmark = pytest.mark.browser

DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "images"
OPS_TOKEN = "tok-salesops-77c1d0e2"


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if os.environ.get("HANDOFF_DOCS_SCREENSHOTS") == "1":
        await asyncio.to_thread(DOCS_IMAGES.mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(DOCS_IMAGES / name), full_page=True)


async def cells(page: Page, table: str) -> list[list[str]]:
    rows = page.locator(f"table#{table} tbody tr")
    return [
        [c.strip() for c in await rows.nth(i).locator("td").all_inner_texts()]
        for i in range(await rows.count())
    ]


async def test_the_stall_page_shows_the_seeded_figures_filters_and_exports(
    dev_env: WorkflowEnvironment, tmp_path: Path, browser: Browser
) -> None:
    """As of the end of 2026-11-10 (hour 216 of the seed): B has waited 210 h and D 38 h at
    the deal desk, qualify took 8 h at p50 and 20 h at p90, one deal-desk stay in four
    moved on; Victor's filter keeps his two handoffs, and the CSV holds what is shown."""
    port = free_port()
    tokens = {email: SecretStr(t) for email, t in {**TOKENS, SALES_OPS: OPS_TOKEN}.items()}
    settings = make_settings(
        tmp_path, api_port=port, public_url=f"http://127.0.0.1:{port}", api_tokens=tokens
    )
    store = open_store(settings)
    for e in EVENTS:
        store.record(e)
    store.close()
    async with asynccontextmanager(serve)(settings, dev_env.client) as base:
        context = await browser.new_context(
            viewport={"width": 960, "height": 900}, accept_downloads=True
        )
        page = await context.new_page()
        elsewhere: list[str] = []
        dialogs: list[str] = []

        async def only_here(route: Route) -> None:
            if route.request.url.startswith(base):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        async def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        await page.route("**/*", only_here)
        page.on("dialog", on_dialog)
        await page.goto(f"{base}/login?next=/stalls?type=lead-to-cash%26until=2026-11-10")
        await page.fill("#token", OPS_TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/stalls?type=lead-to-cash&until=2026-11-10")

        summary = await page.locator("#summary").inner_text()
        assert summary.startswith("4 handoffs, 2 open, as of 2026-11-11 00:00 UTC")
        assert ["deal_desk", "2", "38.0 h", "210.0 h", "0", "1", "0", "1"] in await cells(
            page, "aging"
        )
        assert ["whole period", "qualify", "4", "8.0 h", "20.0 h"] in await cells(
            page, "time-in-stage"
        )
        assert ["2026-11-02", "qualify", "3", "10.0 h", "20.0 h"] in await cells(
            page, "time-in-stage"
        )
        assert ["deal_desk", "4", "1", "1", "25%"] in await cells(page, "conversion")
        assert ["deal_desk", "1", "1"] in await cells(page, "nudges")
        assert ["whole period", "1", "40.0 h", "40.0 h"] in await cells(page, "cycle")
        assert ["owner", EVIL, "1", "38.0 h"] in await cells(page, "waits")
        assert await page.locator("svg.chart").count() == 7
        assert await page.locator("script").count() == 0
        await shot(page, "stalls-overview.png")

        # filters: the operations team has no stage open; Victor's handoffs are B and D
        await page.select_option("select[name=team]", "operations")
        await page.click("#filters button[type=submit]")
        await page.wait_for_url("**team=operations**")
        assert await cells(page, "aging") == [["Nothing is open."]]
        await page.select_option("select[name=team]", "")
        await page.fill("input[name=owner]", VICTOR)
        await page.click("#filters button[type=submit]")
        await page.wait_for_url("**owner=victor.vp%40example.com**")
        summary = await page.locator("#summary").inner_text()
        assert summary.startswith("2 handoffs, 2 open")
        await shot(page, "stalls-owner-filter.png")

        async with page.expect_download() as info:
            await page.click("#csv")
        download = await info.value
        path = tmp_path / "stalls.csv"
        await download.save_as(str(path))
        lines = (await asyncio.to_thread(path.read_text, encoding="utf-8")).splitlines()
        assert lines[0].startswith("figure,week,stage,by,value,count")
        assert "aging,,deal_desk,,,2,38.00,,210.00,,,,," in lines
        assert not any(line.startswith("cycle_time") for line in lines)  # Victor's: none done

        assert elsewhere == [] and dialogs == []
        await context.close()

"""`/docs` renders the API's operations in Chromium with every other origin blocked."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route
from support.api import make_settings
from temporalio.testing import WorkflowEnvironment

from .conftest import free_port, serve

pytestmark = pytest.mark.browser


async def test_swagger_ui_renders_the_operations_offline(
    dev_env: WorkflowEnvironment, tmp_path: Path, browser: Browser
) -> None:
    """With requests to any other host aborted, /docs still lists the API's operations."""
    port = free_port()
    settings = make_settings(tmp_path, api_port=port, public_url=f"http://127.0.0.1:{port}")
    async with asynccontextmanager(serve)(settings, dev_env.client) as base:
        page = await browser.new_page()
        elsewhere: list[str] = []

        async def only_here(route: Route) -> None:
            if route.request.url.startswith(base):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_here)
        await page.goto(f"{base}/docs")
        await page.wait_for_selector(".opblock", timeout=15000)
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        await page.close()
    assert any("/healthz" in p for p in paths), paths
    assert any("/approve" in p for p in paths), paths
    assert elsewhere == []

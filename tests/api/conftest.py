"""Fixtures for the API tests: settings with known tokens and an in-process app client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.api import api_client, make_settings
from temporalio.testing import WorkflowEnvironment

from worker.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def http(
    dev_env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API over ASGI, bound to the dev server's client."""
    async with api_client(settings, dev_env.client) as client:
        yield client

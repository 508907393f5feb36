"""A type `handoff new` just made waits on its approval ladder and is reached on every
surface, with no hand wiring: the checks a renewal passes (tests/support/cli.py,
tests/support/api.py), on the dev server with a real worker.

Not collected by the suite (the name has no `test_` prefix): tests/scaffold/test_scaffold.py
scaffolds a type into a copy of the repository and runs this module there with pytest,
naming the type in `SCAFFOLDED_HANDOFF` (its snake_case name)."""

from __future__ import annotations

import os
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.api import (
    AtTier,
    api_client,
    approves_by_its_signed_link,
    approves_from_its_page,
    approves_through_its_typed_route,
    handoff_at_tier,
    make_settings,
    shows_in_inbox_and_on_board,
)
from support.cli import approves_with_its_type, shows_in_status_list_and_stuck
from support.handoffs import give_evidence, make_deal, status
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from worker.client.handoffs import HandoffRef
from worker.devtools.scaffold import type_name
from worker.settings import Settings
from workflows.names import WaitingOn
from workflows.policy import Policy, default_policy, parse_policy

NAME = os.environ.get("SCAFFOLDED_HANDOFF", "")
if not NAME:
    pytest.skip(
        "run by tests/scaffold/test_scaffold.py in a scaffolded copy", allow_module_level=True
    )
SNIPPET = Path(__file__).parents[2] / "workflows" / f"{NAME}.policy.yaml"

pytestmark = pytest.mark.integration


def pasted_policy() -> Policy:
    """The default policy with the type's generated section pasted in, as ops would."""
    data = default_policy().model_dump(mode="json")
    for key, section in yaml.safe_load(SNIPPET.read_text(encoding="utf-8")).items():
        data.setdefault(key, {}).update(section)
    return parse_policy(data, source=str(SNIPPET))


def at_tier(
    client: Client, task_queue: str, settings: Settings
) -> AbstractAsyncContextManager[AtTier]:
    """The scaffolded handoff on a deal with a 30% discount: its evidence is given, and the
    deal desk asks the sales manager (as for the renewal in the shared checks)."""
    deal = make_deal(f"S-{uuid.uuid4().hex[:8]}", discount=30)

    async def reach(client: Client, ref: HandoffRef, handle: WorkflowHandle[Any, Any]) -> None:
        await give_evidence(handle, f"{NAME}_confirmed")

    return handoff_at_tier(
        client, task_queue, settings, type_name(NAME), deal, reach, pasted_policy()
    )


def address_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_it_waits_on_its_ladder_in_status_list_stuck_inbox_and_board(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """After its evidence, the handoff waits on the sales manager's tier of the ladder, and
    `status`, `list`, `stuck`, the approvals inbox and the stall board show it by type."""
    settings = make_settings(tmp_path)
    async with at_tier(dev_env.client, task_queue, settings) as (handle, _, _):
        st = await status(handle)
        assert st.stage == "deal_desk" and st.waiting_on == WaitingOn.DISCOUNT_APPROVAL
        assert st.workflow_type == HandoffRef.from_workflow_id(handle.id).type.workflow_type
        await shows_in_status_list_and_stuck(address_of(dev_env), handle)
        async with api_client(settings, dev_env.client) as http:
            await shows_in_inbox_and_on_board(http, handle)


async def test_approve_with_its_type_decides_it_and_status_shows_the_next_tier(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """`handoff approve <deal> --type <new type>` decides the tier; `status --json` right
    after shows the approval and the VP's tier asked next."""
    async with at_tier(dev_env.client, task_queue, make_settings(tmp_path)) as (handle, _, _):
        await approves_with_its_type(address_of(dev_env), handle)


async def test_its_typed_api_route_approves_it(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """POST /api/handoffs/<new type>/... approves it; the lead-to-cash route says 404."""
    settings = make_settings(tmp_path)
    async with (
        at_tier(dev_env.client, task_queue, settings) as (handle, _, _),
        api_client(settings, dev_env.client) as http,
    ):
        await approves_through_its_typed_route(http, handle)


async def test_it_is_approved_from_its_page(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """Its page (where the inbox card's form posts) takes the sales manager's decision."""
    settings = make_settings(tmp_path)
    async with (
        at_tier(dev_env.client, task_queue, settings) as (handle, _, _),
        api_client(settings, dev_env.client) as http,
    ):
        await approves_from_its_page(http, handle)


async def test_its_signed_link_approves_it(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """The approve link in the sales manager's notice approves the new type's handoff."""
    settings = make_settings(tmp_path)
    async with (
        at_tier(dev_env.client, task_queue, settings) as (handle, _, notifier),
        api_client(settings, dev_env.client) as http,
    ):
        await approves_by_its_signed_link(http, handle, notifier)

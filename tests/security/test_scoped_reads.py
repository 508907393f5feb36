"""Scoped reads against a token holder reading what is not theirs: a person sees their
own approvals and the deals they own or act on (403 `out_of_scope` otherwise, nothing
changed); an ops role sees everything."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from support.api import TOKENS, api_client, deal_at_tier, deal_path, make_settings, same_state
from support.handoffs import MANAGER, OPS, OWNER, SALES_OPS, VP, status
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration
ALL_TOKENS = {**TOKENS, SALES_OPS: "tok-salesops-77e1c0aa"}


def bearer(email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ALL_TOKENS[email]}"}


@pytest.fixture(scope="module")
async def deal(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]]]:
    """A deal owned by the rep, waiting on the sales manager; one token per person."""
    settings = make_settings(
        Path(tmp_path_factory.mktemp("scopes")),
        api_tokens={email: SecretStr(token) for email, token in ALL_TOKENS.items()},
    )
    async with (
        deal_at_tier(dev_env.client, f"tq-{uuid.uuid4()}", settings) as (handle, _, _),
        api_client(settings, dev_env.client) as http,
    ):
        yield http, handle


@pytest.mark.parametrize(
    ("who", "allowed"),
    [(OWNER, True), (MANAGER, True), (SALES_OPS, True), (VP, False), (OPS, False)],
)
async def test_status_is_for_those_who_own_or_act_on_the_deal_and_ops(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]], who: str, allowed: bool
) -> None:
    """The owner, the approver asked and sales ops read it; the VP and operations, not
    involved yet, get 403 out_of_scope and no deal data."""
    http, handle = deal
    before = await status(handle)
    response = await http.get(deal_path(handle, "status"), headers=bearer(who))
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["deal_id"] == before.deal_id
    else:
        assert response.status_code == 403
        assert response.json()["error"] == "out_of_scope"
        assert "terms" not in response.text and "history" not in response.text
    assert same_state(before, await status(handle))


async def test_another_persons_approvals_are_out_of_scope(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """The VP cannot list the manager's queue; without a filter the VP sees only their own."""
    http, handle = deal
    deal_id = handle.id.split("-", 4)[-1]
    other = await http.get("/api/approvals", params={"approver": MANAGER}, headers=bearer(VP))
    assert other.status_code == 403 and other.json()["error"] == "out_of_scope"
    own = await http.get("/api/approvals", headers=bearer(VP))
    assert own.status_code == 200
    assert all(deal_id != item["deal_id"] for item in own.json())


async def test_ops_and_the_approver_see_the_pending_item(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """Sales ops sees everyone's queue (with or without a filter); the manager their own."""
    http, handle = deal
    deal_id = handle.id.split("-", 4)[-1]
    for who, params in ((SALES_OPS, {}), (SALES_OPS, {"approver": MANAGER}), (MANAGER, {})):
        response = await http.get("/api/approvals", params=params, headers=bearer(who))
        assert response.status_code == 200, response.text
        assert any(item["deal_id"] == deal_id for item in response.json()), (who, params)


async def test_ops_roles_are_a_setting(
    dev_env: WorkflowEnvironment,
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
    tmp_path: Path,
) -> None:
    """HANDOFF_OPS_ROLES=["operations"] lets operations read every deal."""
    _, handle = deal
    settings = make_settings(tmp_path, ops_roles=["operations"])
    async with api_client(settings, dev_env.client) as http:
        response = await http.get(deal_path(handle, "status"), headers=bearer(OPS))
    assert response.status_code == 200


async def test_the_deal_page_is_scoped_like_the_api(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """The web deal page: 403 for the VP (not involved), the page for the manager."""
    http, handle = deal
    path = "/" + deal_path(handle).removeprefix("/api/")
    refused = await http.get(path, headers={"Cookie": f"handoff_session={ALL_TOKENS[VP]}"})
    shown = await http.get(path, headers={"Cookie": f"handoff_session={ALL_TOKENS[MANAGER]}"})
    assert refused.status_code == 403 and "Not yours" in refused.text
    assert shown.status_code == 200
    assert "sales manager" in shown.text and "sales manager" not in refused.text


async def test_the_stall_board_shows_a_person_only_their_deals(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """The VP (not involved) sees an empty board; the manager and ops see the deal."""
    http, handle = deal

    def ids(board: dict[str, Any]) -> set[str]:
        return {i["workflow_id"] for g in board["groups"] for i in g["items"]}

    boards = {
        who: (await http.get("/api/stuck", headers=bearer(who))).json()
        for who in (VP, MANAGER, SALES_OPS)
    }
    assert handle.id not in ids(boards[VP])
    assert handle.id in ids(boards[MANAGER]) and handle.id in ids(boards[SALES_OPS])

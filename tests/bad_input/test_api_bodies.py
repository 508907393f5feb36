"""Bad API request bodies: a 4xx that names the field, and the handoff's status unchanged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.api import MANAGER, api_client, bearer, deal_at_tier, deal_path, make_settings
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

pytestmark = pytest.mark.integration

HUGE = "x" * 5_000
# (action, body, status, field the error must name, fragment of the message)
BAD: list[tuple[str, Any, int, str, str]] = [
    ("approve", {}, 422, "reason", "Field required"),
    ("approve", {"reason": 42}, 422, "reason", "valid string"),
    ("approve", {"reason": ""}, 422, "reason", "at least 1 character"),
    ("approve", {"reason": "   "}, 422, "reason", "at least 1 character"),
    ("approve", {"reason": HUGE}, 422, "reason", "at most 2000 characters"),
    ("approve", {"reason": "ok", "approver": "carla.cfo@example.com"}, 422, "approver",
     "Extra inputs are not permitted"),
    ("approve", ["ok"], 422, "body", "valid dictionary"),
    ("reject", {"reason": None}, 422, "reason", "valid string"),
    ("terms", {"discount_percent": -5}, 422, "discount_percent", "greater than or equal to 0"),
    ("terms", {"discount_percent": 250}, 422, "discount_percent", "less than or equal to 100"),
    ("terms", {"discount_percent": "lots"}, 422, "discount_percent", "valid number"),
    ("terms", {"amount": 0}, 422, "amount", "greater than 0"),
    ("terms", {"discount_percent": 5, "by": "victor.vp@example.com"}, 422, "by",
     "Extra inputs are not permitted"),
    ("exceptions", {"kind": "k" * 200, "note": "n"}, 422, "kind", "at most 100 characters"),
    ("exceptions", {"kind": "legal_review"}, 422, "note", "Field required"),
    ("evidence", {"kind": ["budget_confirmed"]}, 422, "kind", "valid string"),
    ("evidence", {"kind": "budget_confirmed", "ref": HUGE}, 422, "ref", "at most 500"),
    ("accept", {"team": 5}, 422, "team", "valid string"),
    # well-formed bodies the workflow refuses as `invalid`: 422 with the code and the reason
    ("evidence", {"kind": "telepathy"}, 422, "telepathy", "unknown evidence kind"),
    ("exceptions", {"kind": "alien_invasion", "note": "!"}, 422, "alien_invasion",
     "unknown exception kind"),
]  # fmt: skip
STATE_KEYS = {"history", "approvals", "pending_approval", "approval_round", "stage",
              "waiting_on", "owner", "terms", "evidence", "exceptions", "accepted"}  # fmt: skip


@pytest.fixture(scope="module")
async def deal(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]]]:
    """One deal waiting on the sales manager, shared by every case (none may change it)."""
    settings = make_settings(Path(tmp_path_factory.mktemp("api")))
    async with (
        deal_at_tier(dev_env.client, f"tq-{uuid.uuid4()}", settings) as (h, _, _),
        api_client(settings, dev_env.client) as http,
    ):
        yield http, h


async def state(http: httpx.AsyncClient, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """The business state: what a refusal must not change (the refusals it records in
    the audit trail aside)."""
    response = await http.get(deal_path(handle, "status"), headers=bearer(MANAGER))
    assert response.status_code == 200
    kept = {k: v for k, v in response.json().items() if k in STATE_KEYS}
    kept["history"] = [h for h in kept["history"] if h["kind"] != "refused"]
    return kept


@pytest.mark.parametrize(("action", "body", "status", "field", "fragment"), BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])  # fmt: skip
async def test_a_bad_body_gets_a_4xx_naming_the_field_and_changes_nothing(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
    action: str, body: Any, status: int, field: str, fragment: str,
) -> None:  # fmt: skip
    """The error names the field and what is allowed; the handoff's status is untouched."""
    http, handle = deal
    before = await state(http, handle)
    response = await http.post(deal_path(handle, action), json=body, headers=bearer(MANAGER))
    assert response.status_code == status, response.text
    text = response.text
    assert field in text
    assert fragment in text
    refused = "code" in response.json()  # by the workflow, not by the body's schema
    if not refused:
        locs = [e["loc"] for e in response.json()["detail"]]
        assert any(field in loc for loc in locs), locs
    assert await state(http, handle) == before
    if refused:  # the workflow refused it with a typed code: recorded, with who and why
        assert response.json()["code"] == "invalid"
        response = await http.get(deal_path(handle, "status"), headers=bearer(MANAGER))
        last = [h for h in response.json()["history"] if h["kind"] == "refused"][-1]
        assert fragment in last["detail"] and last["by"] == MANAGER


async def test_a_body_that_is_not_json_is_a_422_and_changes_nothing(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """Raw text where JSON is expected: 422 json_invalid, nothing recorded."""
    http, handle = deal
    before = await state(http, handle)
    response = await http.post(
        deal_path(handle, "approve"),
        content=b"approve it please",
        headers={**bearer(MANAGER), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert await state(http, handle) == before

"""Garbage to the HubSpot webhook (through the ingress wired to a real `TemporalStarter`):
each is refused with 400, 401 or 413 and a reason, and no workflow is started."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from connectors.hubspot import DEFAULT_MAPPING
from worker.http.ingress.hubspot import build_router, sign_v3
from worker.http.ingress.temporal_starter import TemporalStarter
from workflows.names import lead_to_cash_id
from workflows.policy import default_policy

pytestmark = pytest.mark.integration

SECRET = "bad-input-app-secret"
BASE = "http://handoff.test"
URI = f"{BASE}/webhooks/hubspot"
LIMIT = 4096


@pytest.fixture
async def http(dev_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    policy = default_policy()
    app.include_router(
        build_router(
            client_secret=SecretStr(SECRET),
            starter=TemporalStarter(dev_env.client, policy, task_queue),
            policy=policy,
            mapping=DEFAULT_MAPPING,
            max_body_bytes=LIMIT,
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


def creation(deal_id: int) -> dict[str, Any]:
    return {"eventId": deal_id, "subscriptionType": "deal.creation", "objectId": deal_id,
            "occurredAt": int(time.time() * 1000)}  # fmt: skip


def signed(body: bytes, stamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time() * 1000) if stamp is None else stamp
    return {
        "X-HubSpot-Signature-v3": sign_v3(secret, "POST", URI, body, stamp),
        "X-HubSpot-Request-Timestamp": str(stamp),
        "Content-Type": "application/json",
    }


async def assert_not_started(dev_env: WorkflowEnvironment, deal_id: int) -> None:
    handle = dev_env.client.get_workflow_handle(lead_to_cash_id("hubspot", str(deal_id)))
    with pytest.raises(RPCError) as info:
        await handle.describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


def new_id() -> int:
    return 900_000_000 + uuid.uuid4().int % 10**8


def _body_cases() -> list[tuple[str, Any, str, str]]:
    """(case, body maker from a deal id, error code, detail fragment)."""
    return [
        ("malformed json", lambda d: b'[{"eventId": 1, "objectId": ' + str(d).encode(),
         "malformed_json", "Invalid JSON"),
        ("object not list", lambda d: json.dumps(creation(d)).encode(),
         "invalid_events", "valid array"),
        ("wrong types", lambda d: json.dumps([{**creation(d), "occurredAt": "yesterday"}]).encode(),
         "invalid_events", "0.occurredAt"),
        ("negative time", lambda d: json.dumps([{**creation(d), "occurredAt": -5}]).encode(),
         "invalid_events", "0.occurredAt"),
        ("missing field", lambda d: json.dumps([{k: v for k, v in creation(d).items()
                                                 if k != "subscriptionType"}]).encode(),
         "invalid_events", "0.subscriptionType"),
        ("empty type", lambda d: json.dumps([{**creation(d), "subscriptionType": ""}]).encode(),
         "invalid_events", "0.subscriptionType"),
        ("bad second event", lambda d: json.dumps([creation(d), {"eventId": 2}]).encode(),
         "invalid_events", "1."),
        ("not utf-8", lambda d: b"\xff\xfe" + json.dumps([creation(d)]).encode(),
         "malformed_json", "Invalid JSON"),
    ]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "error", "fragment"), _body_cases(),
                         ids=[c[0] for c in _body_cases()])  # fmt: skip
async def test_a_signed_garbage_body_is_refused_with_400_and_starts_nothing(
    http: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    case: str,
    make: Any,
    error: str,
    fragment: str,
) -> None:
    """Correctly signed but not a list of valid events: 400 naming the problem."""
    deal_id = new_id()
    body = make(deal_id)
    response = await http.post("/webhooks/hubspot", content=body, headers=signed(body))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert fragment in response.json()["detail"], response.json()
    await assert_not_started(dev_env, deal_id)


@pytest.mark.parametrize(
    ("case", "headers", "error"),
    [
        ("wrong secret", lambda b: signed(b, secret="guessed"), "invalid_signature"),
        ("stale", lambda b: signed(b, stamp=int(time.time() * 1000) - 6 * 60 * 1000),
         "stale_request"),
        ("seconds not ms", lambda b: signed(b, stamp=int(time.time())), "stale_request"),
        ("no signature", lambda b: {**signed(b), "X-HubSpot-Signature-v3": ""},
         "missing_signature"),
        ("no timestamp", lambda b: {"X-HubSpot-Signature-v3": signed(b)["X-HubSpot-Signature-v3"]},
         "invalid_timestamp"),
        ("signature of another body", lambda b: signed(b + b" "), "invalid_signature"),
    ],
    ids=["wrong secret", "stale", "seconds", "no signature", "no timestamp", "other body"],
)  # fmt: skip
async def test_a_badly_signed_webhook_is_refused_with_401_and_starts_nothing(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, case: str, headers: Any, error: str
) -> None:
    """A valid creation event with a bad or stale signature: 401 with the reason."""
    deal_id = new_id()
    body = json.dumps([creation(deal_id)]).encode()
    response = await http.post("/webhooks/hubspot", content=body, headers=headers(body))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == error
    assert response.json()["detail"]
    await assert_not_started(dev_env, deal_id)


async def test_an_oversized_webhook_is_refused_with_413_and_starts_nothing(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """A body over the limit is refused before its signature is even checked."""
    deal_id = new_id()
    body = json.dumps([{**creation(deal_id), "pad": "x" * LIMIT}]).encode()
    response = await http.post("/webhooks/hubspot", content=body, headers=signed(body))
    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": f"the body is over {LIMIT} bytes"}
    await assert_not_started(dev_env, deal_id)


async def test_a_valid_webhook_does_start_the_workflow(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    """The control case: the same request, well formed and signed, starts the handoff."""
    deal_id = new_id()
    body = json.dumps([creation(deal_id)]).encode()
    response = await http.post("/webhooks/hubspot", content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    handle = dev_env.client.get_workflow_handle(lead_to_cash_id("hubspot", str(deal_id)))
    assert (await handle.describe()).id == handle.id
    await handle.terminate("control case done")

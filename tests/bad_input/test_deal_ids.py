"""Deal ids of the wrong shape: an attacker's `../`, `-approval-r1`, spaces or quotes are
refused where they enter (API, pages, links, CLI, webhooks) before any workflow or CRM
call, with a message that names the field and never repeats the value."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from support.api import MANAGER, TOKENS, bearer, make_settings
from temporalio.client import Client

from connectors.hubspot import DEFAULT_MAPPING
from worker.http.auth import SESSION_COOKIE
from worker.http.ingress.hubspot import build_router, sign_v3
from worker.http.links import LinkClaims, SignedLinks
from worker.ids import InvalidDealId, check_deal_id
from worker.processes.api import create_app
from workflows.policy import default_policy

HANDOFF = str(Path(sys.executable).parent / "handoff")
GOOD = [("hubspot", "1001"), ("hubspot", "9" * 20), ("salesforce", "006000000000001"),
        ("salesforce", "006000000000001AAA"), ("memory", "D-1a2b_3")]  # fmt: skip
BAD = [("hubspot", "10a1"), ("hubspot", "1" * 21), ("hubspot", ""), ("salesforce", "006"),
       ("salesforce", "0060000000000011"), ("salesforce", "../../User/005"),
       ("memory", "../etc"), ("memory", "D-1-approval-r1"), ("memory", "D 1"),
       ("memory", 'D"1'), ("memory", "x" * 65), ("memory", "D-1\n"),
       ("nosuchcrm", "1")]  # fmt: skip
#: Ids that reach the deal id path segment (no slash) and must be a 422 there.
PATH_BAD = ["D-1-approval-r1", "D%201", "D%221", "%2E%2E", "x" * 65, "D'1", "D%3B1"]


class NoTemporal:
    """A Temporal client stand-in that records any use: a refusal must make none."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        raise AssertionError(f"Temporal was called: {name}")


@pytest.mark.parametrize(("crm", "deal_id"), GOOD)
def test_ids_of_the_crm_shape_pass(crm: str, deal_id: str) -> None:
    """HubSpot digits, Salesforce 15/18 characters, memory ids: accepted."""
    check_deal_id(crm, deal_id)


@pytest.mark.parametrize(("crm", "deal_id"), BAD)
def test_ids_of_another_shape_are_refused_naming_the_field(crm: str, deal_id: str) -> None:
    """The error names `deal_id` (or `crm`) and the shape, never the value."""
    with pytest.raises(InvalidDealId) as caught:
        check_deal_id(crm, deal_id)
    assert caught.value.field in ("deal_id", "crm")
    assert deal_id not in str(caught.value) or deal_id in ("1", "")


@pytest.fixture
def no_temporal() -> NoTemporal:
    return NoTemporal()


@pytest.fixture
async def http(tmp_path: Path, no_temporal: NoTemporal) -> Any:
    app = create_app(make_settings(tmp_path), cast(Client, no_temporal))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.mark.parametrize("deal_id", PATH_BAD)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/deals/memory/{}/status", None),
        ("POST", "/api/deals/memory/{}/approve", {"reason": "ok"}),
        ("POST", "/api/deals/memory/{}/evidence", {"kind": "contract_signed"}),
        ("POST", "/api/deals/hubspot/{}/terms", {"discount_percent": 5}),
    ],
)
async def test_the_api_refuses_a_bad_deal_id_with_422_before_any_workflow_call(
    http: httpx.AsyncClient, no_temporal: NoTemporal,
    method: str, path: str, body: Any, deal_id: str,
) -> None:  # fmt: skip
    """422 naming `deal_id`, the value not echoed, Temporal never asked."""
    response = await http.request(method, path.format(deal_id), json=body, headers=bearer(MANAGER))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["path", "deal_id"]
    assert "approval-r1" not in response.text and "xxxxx" not in response.text
    assert no_temporal.used == []


async def test_a_slash_in_a_deal_id_never_reaches_a_workflow(
    http: httpx.AsyncClient, no_temporal: NoTemporal
) -> None:
    """`..%2F` cannot escape the path segment: 404 or 422, and no Temporal call."""
    for path in ("/api/deals/salesforce/..%2F..%2FUser%2F005/status",
                 "/api/deals/memory/%2E%2E/status", "/deals/memory/..%2Fx"):  # fmt: skip
        response = await http.get(path, headers=bearer(MANAGER))
        assert response.status_code in (404, 422), (path, response.text)
    assert no_temporal.used == []


async def test_an_unknown_crm_is_a_422(http: httpx.AsyncClient, no_temporal: NoTemporal) -> None:
    response = await http.get("/api/deals/nosuchcrm/1/status", headers=bearer(MANAGER))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "crm"]
    assert no_temporal.used == []


@pytest.mark.parametrize("deal_id", ["D-1-approval-r1", "D%201", "%2E%2E"])
async def test_the_web_pages_refuse_a_bad_deal_id(
    http: httpx.AsyncClient, no_temporal: NoTemporal, deal_id: str
) -> None:
    """The deal page and its decide form: 422, Temporal never asked."""
    cookies = {SESSION_COOKIE: TOKENS[MANAGER]}
    http.cookies.update(cookies)
    page = await http.get(f"/deals/memory/{deal_id}")
    decide = await http.post(
        f"/deals/memory/{deal_id}/decide", data={"decision": "approve", "reason": "ok"}
    )
    assert (page.status_code, decide.status_code) == (422, 422)
    assert no_temporal.used == []


async def test_a_signed_link_for_a_bad_deal_id_is_refused(
    http: httpx.AsyncClient, no_temporal: NoTemporal
) -> None:
    """Even a correctly signed link is refused if its deal id has the wrong shape."""
    links = http.app.state.links  # type: ignore[attr-defined]
    assert isinstance(links, SignedLinks)
    claims = LinkClaims(
        id="l1", approver=MANAGER, workflow_id="lead-to-cash-hubspot-1-approval-r1",
        crm="hubspot", deal_id="1-approval-r1", round=1, tier="sales_manager",
        decision="approve", expires=int(time.time()) + 600,
    )  # fmt: skip
    token = links.sign(claims)
    response = await http.get(f"/links/{token}")
    assert response.status_code == 403
    assert no_temporal.used == []


async def test_a_webhook_with_a_bad_object_id_starts_nothing() -> None:
    """A signed batch with a non-numeric objectId is a 400; no event reaches the starter."""
    calls: list[Any] = []

    class Starter:
        async def deal_entered_trigger(self, *a: Any) -> None:
            calls.append(a)

        async def evidence_arrived(self, *a: Any) -> None:
            calls.append(a)

        async def deal_changed(self, *a: Any) -> None:
            calls.append(a)

    app = FastAPI()
    app.include_router(
        build_router(
            client_secret=SecretStr("s3cret"), starter=Starter(),  # type: ignore[arg-type]
            policy=default_policy(), mapping=DEFAULT_MAPPING,
        )
    )  # fmt: skip
    body = (
        b'[{"eventId": 1, "subscriptionType": "deal.creation", "objectId": 1001,'
        b' "occurredAt": 1},'
        b' {"eventId": 2, "subscriptionType": "deal.creation", "objectId": "1-approval-r1",'
        b' "occurredAt": 2}]'
    )
    stamp = str(int(time.time() * 1000))
    uri = "http://h.test/webhooks/hubspot"
    headers = {
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": sign_v3("s3cret", "POST", uri, body, stamp),
        "Content-Type": "application/json",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://h.test") as client:
        response = await client.post("/webhooks/hubspot", content=body, headers=headers)
    assert response.status_code == 400
    assert "objectId" in response.text and "approval-r1" not in response.text
    assert calls == []


@pytest.mark.parametrize(
    "args",
    [
        ["status", "D-1-approval-r1", "--crm", "memory"],
        ["approve", "../x", "--as", MANAGER, "--reason", "ok", "--crm", "memory"],
        ["deal", "start", "1 OR 1=1", "--crm", "hubspot"],
        ["evidence", "add", "0060000000000011", "contract_signed", "--by", MANAGER,
         "--crm", "salesforce"],
        ["renewal", "start", "D'1", "--crm", "memory"],
    ],
)  # fmt: skip
async def test_the_cli_exits_2_on_a_bad_deal_id_without_reaching_temporal(args: list[str]) -> None:
    """Exit 2 naming `deal_id` and the shape; Temporal (an unused port) is never dialled."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    proc = await asyncio.create_subprocess_exec(
        HANDOFF, *args, env={**clean, "TEMPORAL_ADDRESS": "127.0.0.1:9", "COLUMNS": "300"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = (out + err).decode()
    assert proc.returncode == 2, text
    assert "Invalid deal_id" in text and "Traceback" not in text
    assert args[1] not in text and args[2] not in text

"""Refuse before reading: an attacker's huge or chunked body is a 413 before authentication
and parsing, errors never echo the input, and nothing an attacker sends yields a 500."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import structlog
from fastapi import FastAPI, Request
from starlette.types import Message
from support.api import MANAGER, api_client, bearer, deal_at_tier, deal_path, make_settings
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from worker.limits import install_limits
from worker.logging import configure_logging
from worker.processes.api import create_app

LIMIT = 64 * 1024
STATE_KEYS = {"history", "approvals", "pending_approval", "approval_round", "stage",
              "waiting_on", "owner", "terms", "evidence", "exceptions"}  # fmt: skip


def scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("203.0.113.9", 5000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip


async def call(
    app: Any, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> tuple[int, bytes, int]:
    """Drive the ASGI app by hand: (status, body, how many chunks it read)."""
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope(path, headers), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, read


def never() -> Iterator[bytes]:
    raise AssertionError("the body was read")
    yield b""  # pragma: no cover


def endless(size: int = 16 * 1024) -> Iterator[bytes]:
    while True:
        yield b"x" * size


@pytest.fixture
def api(tmp_path: Path) -> FastAPI:
    """The real API app; its Temporal client is never reached by these refusals."""
    return create_app(make_settings(tmp_path), cast(Client, object()))


async def test_a_declared_200mb_body_is_a_413_before_auth_and_unread(api: FastAPI) -> None:
    """The unauthenticated 200 MB POST of the issue: 413 at once, not one byte read."""
    status, body, _ = await call(
        api,
        "/api/deals/memory/D-1/approve",
        {"content-length": str(200 * 1024 * 1024), "content-type": "application/json"},
        never(),
    )
    assert status == 413
    assert json.loads(body)["error"] == "too_large"


@pytest.mark.parametrize(
    "path", ["/api/deals/memory/D-1/approve", "/login", "/deals/memory/D-1/decide", "/links/x"]
)
async def test_a_chunked_body_is_cut_at_the_limit(api: FastAPI, path: str) -> None:
    """A body with no length, streamed forever to the API or a page, is cut at the limit."""
    headers = {"content-type": "application/x-www-form-urlencoded", **bearer(MANAGER)}
    if path.startswith("/api"):
        headers["content-type"] = "application/json"
    status, body, read = await call(api, path, headers, endless())
    assert status == 413, body
    assert read <= LIMIT // (16 * 1024) + 2
    assert b"xxxx" not in body


async def test_a_bad_content_length_is_a_400_and_unread(api: FastAPI) -> None:
    """A Content-Length that is not a number is refused before reading."""
    status, _, _ = await call(
        api, "/api/deals/memory/D-1/approve", {"content-length": "1e9"}, never()
    )
    assert status == 400


async def test_the_webhook_ingress_keeps_its_own_larger_limit(tmp_path: Path) -> None:
    """`/webhooks/...` may take up to its own limit; past it, 413 unread."""
    app = FastAPI()
    install_limits(app, make_settings(tmp_path, webhook_max_body_bytes=300_000))

    @app.post("/webhooks/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        ok = await http.post("/webhooks/echo", content=b"x" * 200_000)
        assert ok.status_code == 200 and ok.json() == {"read": 200_000}
    status, _, _ = await call(app, "/webhooks/echo", {"content-length": "300001"}, never())
    assert status == 413


async def test_an_unexpected_error_is_a_short_500_and_one_log_line(tmp_path: Path) -> None:
    """A bug answers JSON with a correlation id and logs one line, never a traceback."""
    app = FastAPI()
    install_limits(app, make_settings(tmp_path))

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("secret-ish detail " + "y" * 10_000)

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    configure_logging("production", stream=buffer)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/boom")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert response.status_code == 500
    assert response.json()["error"] == "internal" and response.json()["error_id"]
    logged = [  # the test's own client logs its requests: only the app's lines count
        line for line in buffer.getvalue().splitlines() if line.strip() and '"httpx"' not in line
    ]
    assert len(logged) == 1, logged
    assert "yyyy" not in logged[0] and "Traceback" not in logged[0]
    assert json.loads(logged[0])["error_id"] == response.json()["error_id"]


# -- against a live deal: refused, and nothing changed ----------------------------------
@pytest.fixture(scope="module")
async def deal(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]]]:
    settings = make_settings(Path(tmp_path_factory.mktemp("limits")))
    async with (
        deal_at_tier(dev_env.client, f"tq-{uuid.uuid4()}", settings) as (h, _, _),
        api_client(settings, dev_env.client) as http,
    ):
        yield http, h


async def state(http: httpx.AsyncClient, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    response = await http.get(deal_path(handle, "status"), headers=bearer(MANAGER))
    assert response.status_code == 200
    return {k: v for k, v in response.json().items() if k in STATE_KEYS}


@pytest.mark.integration
async def test_an_authenticated_oversize_body_is_a_413_and_changes_nothing(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """The manager's 1 MB approval is refused unread, and the deal is exactly as before."""
    http, handle = deal
    before = await state(http, handle)
    response = await http.post(
        deal_path(handle, "approve"),
        json={"reason": "x" * 1_000_000},
        headers=bearer(MANAGER),
    )
    assert response.status_code == 413
    assert "xxxx" not in response.text
    assert await state(http, handle) == before


@pytest.mark.integration
async def test_a_422_names_the_field_without_echoing_the_input(
    deal: tuple[httpx.AsyncClient, WorkflowHandle[Any, Any]],
) -> None:
    """A 40 KB reason is a 422 that names `reason`, carries no `input`, and changes nothing."""
    http, handle = deal
    before = await state(http, handle)
    big_key = "k" * 10_000
    response = await http.post(
        deal_path(handle, "approve"),
        json={"reason": "z" * 40_000, big_key: 1},
        headers=bearer(MANAGER),
    )
    assert response.status_code == 422
    assert "zzzz" not in response.text and big_key not in response.text
    assert len(response.content) < 2_000
    errors = response.json()["detail"]
    assert all(set(e) == {"type", "loc", "msg"} for e in errors)
    assert any("reason" in e["loc"] for e in errors)
    assert await state(http, handle) == before

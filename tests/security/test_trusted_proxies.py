"""The trusted user header against an attacker who sets it himself: honoured only on a
connection from a listed proxy address; from anywhere else the request is
unauthenticated (production included) and the deal is untouched."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send
from support.api import MANAGER, deal_at_tier, deal_path, make_settings, same_state
from support.handoffs import status
from temporalio.testing import WorkflowEnvironment

from worker.http.auth import Authenticator, Unauthenticated
from worker.processes.api import create_app
from worker.proxies import behind_proxies
from worker.settings import Settings

HEADER = "X-Forwarded-Email"


def request_from(peer: str, headers: dict[str, str]) -> Request:
    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": [
            (k.lower().encode(), v.encode()) for k, v in headers.items()
        ], "client": (peer, 40000),
    }  # fmt: skip
    return Request(scope)


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize(
    ("proxies", "peer", "honoured"),
    [
        ([], "127.0.0.1", False),  # the default: never
        (["10.0.0.5"], "127.0.0.1", False),
        (["10.0.0.5"], "10.0.0.6", False),
        (["10.0.0.5"], "10.0.0.5", True),
        (["10.1.0.0/16"], "10.1.200.3", True),
        (["10.1.0.0/16"], "10.2.0.1", False),
    ],
)
def test_the_user_header_counts_only_from_a_listed_proxy(
    tmp_path: Path, environment: str, proxies: list[str], peer: str, honoured: bool
) -> None:
    """An attacker's own header names nobody; the listed proxy's names the user."""
    settings = make_settings(
        tmp_path, trusted_user_header=HEADER, trusted_proxies=proxies, environment=environment
    )
    identity = Authenticator(settings).identify(request_from(peer, {HEADER: MANAGER}))
    assert (identity is not None and identity.email == MANAGER) is honoured


@pytest.mark.parametrize("value", ["0", "cfo", "x' OR Owner != 'y@z", "a b@example.com", "a@b@c"])
def test_a_proxy_header_that_is_not_an_email_is_refused(tmp_path: Path, value: str) -> None:
    """Even from the listed proxy, a header that names no email is a 401 that does not
    repeat it (it would reach visibility queries and logs as the user's name)."""
    settings = make_settings(tmp_path, trusted_user_header=HEADER, trusted_proxies=["10.0.0.5"])
    with pytest.raises(Unauthenticated) as caught:
        Authenticator(settings).identify(request_from("10.0.0.5", {HEADER: value}))
    assert caught.value.status_code == 401
    assert value not in str(caught.value.detail)


@pytest.mark.parametrize("entry", ["*", "proxy.internal", "10.0.0.0/33"])
def test_a_trusted_proxy_must_be_an_address_or_network(tmp_path: Path, entry: str) -> None:
    """`*` or a host name would trust everyone (or a DNS answer): refused at start-up."""
    with pytest.raises(ValidationError, match="IP address or CIDR"):
        make_settings(tmp_path, trusted_proxies=[entry])


async def test_forwarded_for_is_ignored_from_an_untrusted_peer() -> None:
    """X-Forwarded-For rewrites the client only from a listed proxy; the peer is kept."""
    seen: list[tuple[Any, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["client"], scope["handoff.peer"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_: Message) -> None:
        return None

    wrapped = behind_proxies(app, ["10.0.0.5"])
    for peer in ("203.0.113.7", "10.0.0.5"):
        scope = {"type": "http", "headers": [(b"x-forwarded-for", b"198.51.100.1")],
                 "client": (peer, 1), "scheme": "http"}  # fmt: skip
        await wrapped(scope, receive, send)
    assert seen[0] == (("203.0.113.7", 1), ("203.0.113.7", 1))
    assert seen[1][0][0] == "198.51.100.1" and seen[1][1] == ("10.0.0.5", 1)


@pytest.mark.integration
async def test_a_forged_header_cannot_approve_in_production(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Production, header configured, no proxy listed: the forged approval is a 401 and
    the deal is exactly as before."""
    settings = make_settings(
        tmp_path, trusted_user_header=HEADER, environment="production", encrypt_payloads=False
    )
    async with deal_at_tier(dev_env.client, f"tq-{uuid.uuid4()}", settings) as (handle, _, _):
        before = await status(handle)
        app = create_app(settings, dev_env.client)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post(
                deal_path(handle, "approve"), json={"reason": "ok"}, headers={HEADER: MANAGER}
            )
        assert response.status_code == 401
        assert same_state(before, await status(handle))
        assert not any(h.kind == "approved" for h in (await status(handle)).history)


def test_settings_default_trusts_no_proxy() -> None:
    assert Settings(_env_file=None).trusted_proxies == []  # type: ignore[call-arg]

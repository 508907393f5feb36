"""Trusted proxies: whose word about the user and the client address is taken.

`HANDOFF_TRUSTED_USER_HEADER` names the user, and `X-Forwarded-For`/`-Proto` rewrite the
client address and scheme, only on a connection whose peer is one of
`HANDOFF_TRUSTED_PROXIES` (IPs or CIDRs; empty, the default, means never). From any
other address an attacker's `X-Forwarded-Email: cfo@...` is ignored: the request is
unauthenticated, in production as in development.

The peer is the address of the TCP connection itself, recorded before uvicorn's proxy
middleware replaces the client with the forwarded one (`behind_proxies`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Where the connection's own peer address is kept in the ASGI scope.
PEER_KEY = "handoff.peer"


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """`["10.0.0.5", "10.1.0.0/16"]` → networks; a malformed entry raises ValueError."""
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries]


def is_trusted(host: str | None, networks: list[Network]) -> bool:
    if not host or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def peer_of(request: Request) -> str | None:
    """The connection's peer address (not a forwarded one)."""
    client: Any = request.scope.get(PEER_KEY) or request.scope.get("client")
    return str(client[0]) if client else None


class RecordPeer:
    """ASGI middleware: keep the connection's peer before anything rewrites `client`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PEER_KEY] = scope.get("client")
        await self.app(scope, receive, send)


def behind_proxies(app: ASGIApp, trusted: list[str]) -> ASGIApp:
    """The app as uvicorn should serve it (with `proxy_headers=False`): forwarded headers
    honoured only from `trusted`, and the real peer recorded for the user header."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    hosts = [str(network) for network in parse_networks(trusted)]
    return RecordPeer(ProxyHeadersMiddleware(app, trusted_hosts=hosts))  # type: ignore[arg-type]

"""Temporal unreachable: every surface answers 503 with Retry-After, never a 500 and
never the client library's text (it names the server's address)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.api import api_client, bearer, make_settings
from support.handoffs import MANAGER
from support.processes import free_port
from temporalio.client import Client

from worker.http.errors import RETRY_AFTER_S


@pytest.mark.parametrize(
    "path",
    ["/api/approvals", "/api/deals/hubspot/1001/status", "/api/stuck"],
)
async def test_an_unreachable_temporal_is_a_503_that_names_no_address(
    tmp_path: Path, path: str
) -> None:
    port = free_port()  # nothing listens here
    client = await Client.connect(f"127.0.0.1:{port}", lazy=True)
    async with api_client(make_settings(tmp_path), client) as http:
        r = await http.get(path, headers=bearer(MANAGER))
        ready = await http.get("/readyz")
    assert r.status_code == 503, (path, r.status_code, r.text)
    assert r.json() == {"error": "unavailable", "reason": "Temporal is not reachable; try again"}
    assert r.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert str(port) not in r.text
    assert ready.status_code == 503

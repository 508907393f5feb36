"""Signed links against an attacker who edits a token or holds a link minted with odd
claims: one spelling per link (no lenient base64) and a workflow that matches the deal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from support.api import MANAGER, make_settings
from temporalio.client import Client

from worker.http.links import LinkClaims, LinkTampered, SignedLinks
from worker.processes.api import create_app


class NoTemporal:
    def __init__(self) -> None:
        self.used: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.used.append(name)
        raise AssertionError(f"Temporal was called: {name}")


def claims(**overrides: Any) -> LinkClaims:
    values: dict[str, Any] = {
        "id": "l1", "approver": MANAGER, "workflow_id": "lead-to-cash-memory-D-1",
        "crm": "memory", "deal_id": "D-1", "round": 1, "tier": "sales_manager",
        "decision": "approve", "expires": int(time.time()) + 600, **overrides,
    }  # fmt: skip
    return LinkClaims(**values)


@pytest.fixture
def links(tmp_path: Path) -> SignedLinks:
    made = SignedLinks.from_settings(make_settings(tmp_path))
    assert made is not None
    return made


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t + "=",  # padding the decoder would accept
        lambda t: t + "!",  # a foreign character the decoder would skip
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # trailing bits
        lambda t: t.replace(".", ".\n", 1),  # a line break in the body
    ],
)
def test_an_edited_spelling_of_a_genuine_link_is_refused(links: SignedLinks, edit: Any) -> None:
    """Only the exact token that was sent verifies."""
    token = links.sign(claims())
    assert links.verify(token).deal_id == "D-1"
    with pytest.raises(LinkTampered):
        links.verify(edit(token))


@pytest.mark.parametrize(
    "workflow_id",
    ["lead-to-cash-memory-D-2", "lead-to-cash-memory-D-1-approval-r1", "renewal-hubspot-D-1"],
)
async def test_a_link_whose_workflow_is_not_its_deals_is_refused(
    tmp_path: Path, workflow_id: str
) -> None:
    """A signed link naming another workflow than its deal's: 403, Temporal never asked."""
    no_temporal = NoTemporal()
    app = create_app(make_settings(tmp_path), cast(Client, no_temporal))
    token = app.state.links.sign(claims(workflow_id=workflow_id))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        shown = await http.get(f"/links/{token}")
        used = await http.post(f"/links/{token}", data={"reason": "ok"})
    assert (shown.status_code, used.status_code) == (403, 403)
    assert no_temporal.used == []

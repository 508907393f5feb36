"""Helpers for the API tests: settings with known tokens, an app client, deals at a tier."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle

from activities.notify import ApprovalNotice
from connectors.base import Deal
from connectors.memory import MemoryConnector
from support.handoffs import (
    MANAGER,
    OPS,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    RecordingNotifier,
    give_evidence,
    make_deal,
    start,
    terminate_started,
    tolerant_of_load,
    track,
    until,
)
from worker.client import handoffs
from worker.client.handoffs import HandoffRef
from worker.http.links import SignedLinks
from worker.processes.api import create_app
from worker.processes.worker import build_worker
from worker.settings import Settings
from workflows.messages import DealStatus
from workflows.names import RENEWAL, Msg
from workflows.policy import Policy, default_policy

TOKENS = {
    OWNER: "tok-owner-5b1f0c9e",
    MANAGER: "tok-manager-8d2a7e44",
    VP: "tok-vp-3c9e1b77",
    OPS: "tok-ops-1a4f6d20",
}
LINK_SECRET = "link-secret-for-tests-0123456789abcdef"
BASE = "http://testserver"


def make_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: never read from the environment or a `.env` file."""
    values: dict[str, Any] = {
        "api_tokens": {email: SecretStr(tok) for email, tok in TOKENS.items()},
        "link_secret": SecretStr(LINK_SECRET),
        "state_dir": state_dir,
        "public_url": BASE,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def bearer(email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[email]}"}


@asynccontextmanager
async def api_client(settings: Settings, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process over ASGI (the app is on `http.app`... via `.app_of`)."""
    app = create_app(settings, client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


@asynccontextmanager
async def deal_at_tier(
    client: Client,
    task_queue: str,
    settings: Settings,
    discount: float = 30,
    deal_id: str | None = None,
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], MemoryConnector, RecordingNotifier]]:
    """A memory-CRM deal whose discount waits on the sales manager, with signed links on."""
    deal = make_deal(deal_id or f"D-{uuid.uuid4().hex[:8]}", discount=discount)
    crm = MemoryConnector([deal])
    notifier = RecordingNotifier()
    links = SignedLinks.from_settings(settings)
    async with tolerant_of_load(
        build_worker(client, task_queue=task_queue, connector=crm, notifier=notifier, links=links)
    ):
        try:
            handle = await start(client, task_queue, deal.id)
            await give_evidence(handle, *QUALIFY_EVIDENCE)
            await until(handle, lambda s: s.pending_approval is not None)
            await asked(notifier, links is not None)
            yield handle, crm, notifier
        finally:
            await terminate_started(client, task_queue)


async def asked(notifier: RecordingNotifier, with_links: bool, timeout: float = 10) -> None:
    """Wait for the approval notice: its activity runs just after the status shows the
    pending tier, so a test reading the notice at once could miss it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(n.links or not with_links for n in notifier.notices if "Approve " in n.subject):
        assert asyncio.get_running_loop().time() < deadline, "no approval notice was sent"
        await asyncio.sleep(0.05)


#: The account manager who confirms a renewal's usage (the default policy's `account_manager`).
AM = "amy.am@example.com"


#: Brings a handoff just started through the client path to a tier of its ladder.
Reach = Callable[[Client, HandoffRef, WorkflowHandle[Any, Any]], Awaitable[None]]
#: A handoff waiting on a tier: its handle, its memory CRM and the notices sent.
AtTier = tuple[WorkflowHandle[Any, Any], MemoryConnector, RecordingNotifier]


@asynccontextmanager
async def handoff_at_tier(
    client: Client,
    task_queue: str,
    settings: Settings,
    handoff_type: str,
    deal: Deal,
    reach: Reach,
    policy: Policy | None = None,
) -> AsyncIterator[AtTier]:
    """A memory-CRM handoff of `handoff_type` on `deal`, started through the client path
    and brought by `reach` to a tier of its ladder, with signed links on; yields once the
    approvers' notice is sent, and ends what it started afterwards."""
    crm = MemoryConnector([deal])
    notifier = RecordingNotifier()
    links = SignedLinks.from_settings(settings)
    async with tolerant_of_load(
        build_worker(client, task_queue=task_queue, connector=crm, notifier=notifier, links=links)
    ):
        try:
            ref = HandoffRef.of(handoff_type, "memory", deal.id)
            handle, started = await handoffs.start(
                client, ref, policy=policy or default_policy(), task_queue=task_queue
            )
            assert started
            track(task_queue, handle.id)
            await reach(client, ref, handle)
            await until(handle, lambda s: s.pending_approval is not None)
            await asked(notifier, links is not None)
            yield handle, crm, notifier
        finally:
            await terminate_started(client, task_queue)


def renewal_at_tier(
    client: Client, task_queue: str, settings: Settings, discount: float = 30
) -> AbstractAsyncContextManager[AtTier]:
    """A memory-CRM renewal, started through the client path, whose new discount waits on
    the sales manager (its contract ends within the window, so usage is asked at once)."""
    deal = make_deal(f"R-{uuid.uuid4().hex[:8]}", discount=0)
    deal.fields["contract_end_date"] = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()

    async def reach(client: Client, ref: HandoffRef, handle: WorkflowHandle[Any, Any]) -> None:
        await until(handle, lambda s: s.stage == "usage")
        await handoffs.update(
            client, ref, Msg.UPDATE_TERMS, {"by": OWNER, "discount_percent": discount}
        )
        await give_evidence(handle, "usage_confirmed", by=AM)

    return handoff_at_tier(client, task_queue, settings, RENEWAL, deal, reach)


def typed_path(handle: WorkflowHandle[Any, Any], action: str = "") -> str:
    """`/api/handoffs/<type>/<crm>/<deal>/<action>` of a handoff, from its workflow id."""
    ref = HandoffRef.from_workflow_id(handle.id)
    base = f"/api/handoffs/{ref.type.name}/{ref.crm}/{ref.deal_id}"
    return base + (f"/{action}" if action else "")


def deal_path(handle: WorkflowHandle[Any, Any], action: str = "") -> str:
    deal_id = handle.id.split("-", 4)[-1]
    return f"/api/deals/memory/{deal_id}" + (f"/{action}" if action else "")


def links_sent_to(notifier: RecordingNotifier, person: str) -> dict[str, str]:
    """The newest approve/reject links a person was sent."""
    found = [n.links for n in notifier.notices if person in n.to and n.links]
    assert found, f"no links were sent to {person}"
    return found[-1]


def link_for(
    settings: Settings, st: DealStatus, workflow_id: str, approver: str, action: str
) -> str:
    """A genuinely signed `action` link for the pending tier, made out to `approver`
    whether or not the tier asks them (a forwarded or misdirected link); its path."""
    p = st.pending_approval
    assert p is not None
    notice = ApprovalNotice(
        crm="memory",
        deal_id=st.deal_id,
        deal_name=st.deal_name,
        workflow_id=workflow_id,
        round=p.round,
        tier=p.tier,
        approvers=p.approvers,
        discount_percent=30,
        amount=p.amount,
        net_amount=70_000,
        margin_percent=p.margin_percent,
        due_at=p.due_at,
        reason="approval requested",
    )
    links = SignedLinks.from_settings(settings)
    assert links is not None
    return path_of(links.links_for(notice, approver)[action])


def path_of(url: str) -> str:
    assert url.startswith(BASE), url
    return url[len(BASE) :]


def same_state(a: DealStatus, b: DealStatus) -> bool:
    """Nothing changed between two statuses (history, decisions, what is pending) but the
    refusals the audit trail records."""
    keys = {
        "history",
        "approvals",
        "pending_approval",
        "approval_round",
        "stage",
        "waiting_on",
        "owner",
        "terms",
    }

    def kept(st: DealStatus) -> dict[str, Any]:
        dumped = st.model_dump(include=keys)
        dumped["history"] = [h for h in dumped["history"] if h["kind"] != "refused"]
        return dumped

    return kept(a) == kept(b)


# -- every surface reaches a handoff of any type waiting on the sales manager ---------------
async def sign_in(http: httpx.AsyncClient, email: str) -> None:
    r = await http.post("/login", data={"token": TOKENS[email], "next": "/inbox"})
    assert r.status_code == 303


async def shows_in_inbox_and_on_board(
    http: httpx.AsyncClient, handle: WorkflowHandle[Any, Any]
) -> None:
    """The sales manager's approvals and inbox list the handoff under its type, and the
    stall board (API and page) shows it by type."""
    ref = HandoffRef.from_workflow_id(handle.id)
    kind, deal_id = ref.type.name, ref.deal_id
    items: list[dict[str, str]] = []
    for _ in range(50):  # visibility lags a moment behind the workflow
        r = await http.get(  # one's own approvals (others' are out of scope)
            "/api/approvals", params={"approver": MANAGER}, headers=bearer(MANAGER)
        )
        items = [i for i in r.json() if i["workflow_id"] == handle.id]
        if items:
            break
        await asyncio.sleep(0.2)
    assert [(i["type"], i["tier"]) for i in items] == [(kind, "sales_manager")]

    board = (await http.get("/api/stuck", headers=bearer(OWNER))).json()
    lines = [i for g in board["groups"] for i in g["items"] if i["workflow_id"] == handle.id]
    assert [(i["type"], i["waiting_on"]) for i in lines] == [(kind, "discount_approval")]

    await sign_in(http, MANAGER)
    inbox = await http.get("/inbox")
    card = re.search(rf'data-deal="{re.escape(deal_id)}" data-type="([\w-]+)"', inbox.text)
    assert card is not None and card[1] == kind
    assert f'action="/handoffs/{kind}/memory/{deal_id}/decide"' in inbox.text
    stuck = await http.get("/stuck")
    assert f'href="/handoffs/{kind}/memory/{deal_id}"' in stuck.text
    http.cookies.clear()


async def approves_through_its_typed_route(
    http: httpx.AsyncClient, handle: WorkflowHandle[Any, Any]
) -> None:
    """POST /api/handoffs/<type>/... approves the handoff, and its typed status route
    names its workflow; the deal's lead-to-cash route says 404 and changes nothing."""
    ref = HandoffRef.from_workflow_id(handle.id)
    wrong_type = await http.post(
        f"/api/deals/memory/{ref.deal_id}/approve", headers=bearer(MANAGER), json={"reason": "x"}
    )
    assert wrong_type.status_code == 404
    assert "lead-to-cash" in wrong_type.json()["reason"]
    r = await http.post(
        typed_path(handle, "approve"), headers=bearer(MANAGER), json={"reason": "Keep the logo"}
    )
    assert r.status_code == 200, r.text
    st = await until(handle, lambda s: bool(s.approvals))
    assert [(a.approver, a.reason) for a in st.approvals] == [(MANAGER, "Keep the logo")]
    got = await http.get(typed_path(handle, "status"), headers=bearer(MANAGER))
    assert got.status_code == 200
    assert got.json()["workflow_id"] == handle.id
    assert got.json()["workflow_type"] == ref.type.workflow_type


async def approves_from_its_page(http: httpx.AsyncClient, handle: WorkflowHandle[Any, Any]) -> None:
    """The handoff's page offers the sales manager the decision; posting it approves."""
    ref = HandoffRef.from_workflow_id(handle.id)
    page_path = f"/handoffs/{ref.type.name}/memory/{ref.deal_id}"
    await sign_in(http, MANAGER)
    page = await http.get(page_path)
    assert page.status_code == 200
    assert "Your decision: sales manager tier" in page.text and handle.id in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    r = await http.post(
        f"{page_path}/decide", data={"decision": "approve", "reason": "Go", "csrf": csrf[1]}
    )
    assert r.status_code in (200, 303), r.text
    st = await until(handle, lambda s: bool(s.approvals))
    assert [a.approver for a in st.approvals] == [MANAGER]
    http.cookies.clear()


async def approves_by_its_signed_link(
    http: httpx.AsyncClient, handle: WorkflowHandle[Any, Any], notifier: RecordingNotifier
) -> None:
    """The approve link in the sales manager's notice approves that handoff (its signed
    claims carry the workflow id, so the type needs no route of its own)."""
    link = path_of(links_sent_to(notifier, MANAGER)["approve"])
    r = await http.post(link, data={"reason": "Three-year term"})
    assert r.status_code == 200, r.text
    st = await until(handle, lambda s: bool(s.approvals))
    assert [(a.approver, a.reason) for a in st.approvals] == [(MANAGER, "Three-year term")]

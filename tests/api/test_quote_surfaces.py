"""The quote and the deal-desk conversation on every surface: the API, the inbox and the
deal page, the signed link page, and `handoff status`."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from rich.console import Console
from support.api import (
    TOKENS,
    asked,
    bearer,
    deal_path,
    links_sent_to,
    path_of,
)
from support.handoffs import (
    MANAGER,
    OWNER,
    QUALIFY_EVIDENCE,
    VP,
    RecordingNotifier,
    give_evidence,
    make_deal,
    polls,
    start,
    status,
    terminate_started,
    tolerant_of_load,
    until,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from connectors.lines import QuoteLine
from connectors.memory import MemoryConnector
from worker.cli.render import render_status
from worker.client import handoffs
from worker.http.links import SignedLinks
from worker.processes.worker import build_worker
from worker.settings import Settings
from workflows.names import WaitingOn

WAIT = 60.0

#: A multi-line quote at 20% in total (the sales manager's tier), with real costs.
LINES = [
    QuoteLine(id="L1", name="Platform licence", quantity=40, unit_price=1000,
              discount_percent=20, unit_cost=300),
    QuoteLine(id="L2", name="Onboarding <b>days</b>", quantity=10, unit_price=1500,
              discount_percent=20, unit_cost=900),
]  # fmt: skip


@asynccontextmanager
async def quote_at_manager(
    client: Client, task_queue: str, settings: Settings
) -> AsyncIterator[tuple[WorkflowHandle[Any, Any], MemoryConnector, RecordingNotifier]]:
    deal = make_deal(f"QS-{uuid.uuid4().hex[:8]}", discount=0)
    crm = MemoryConnector([deal])
    crm.set_line_items(deal.id, LINES)
    notifier = RecordingNotifier()
    links = SignedLinks.from_settings(settings)
    async with tolerant_of_load(
        build_worker(client, task_queue=task_queue, connector=crm, notifier=notifier, links=links)
    ):
        try:
            handle = await start(client, task_queue, deal.id)
            await give_evidence(handle, *QUALIFY_EVIDENCE)
            await until(handle, lambda s: s.pending_approval is not None, WAIT)
            await asked(notifier, links is not None, WAIT)
            yield handle, crm, notifier
        finally:
            await terminate_started(client, task_queue)


async def sign_in(http: httpx.AsyncClient, email: str) -> str:
    http.cookies.clear()
    r = await http.post("/login", data={"token": TOKENS[email], "next": "/inbox"})
    assert r.status_code == 303
    page = await http.get("/inbox")
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match is not None
    return match[1]


async def test_api_asks_the_rep_and_the_answer_comes_back(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """POST questions as the approver, questions/answer as the owner; refusals are typed."""
    async with quote_at_manager(dev_env.client, task_queue, settings) as (handle, _, _):
        body = {"question": "Why 20% on onboarding?"}
        r = await http.post(deal_path(handle, "questions"), json=body, headers=bearer(VP))
        assert r.status_code == 403 and r.json()["code"] == "not_authorised"
        r = await http.post(
            deal_path(handle, "questions"), json={"question": "x" * 2001}, headers=bearer(MANAGER)
        )
        assert r.status_code == 422
        r = await http.post(deal_path(handle, "questions"), json=body, headers=bearer(MANAGER))
        assert r.status_code == 200, r.text
        assert r.json()["waiting_on"] == WaitingOn.INFO_REQUEST
        r = await http.post(
            deal_path(handle, "questions/answer"), json={"answer": "no"}, headers=bearer(MANAGER)
        )
        assert r.status_code == 403 and r.json()["code"] == "not_authorised"
        r = await http.post(
            deal_path(handle, "questions/answer"),
            json={"answer": "Multi-year commitment"},
            headers=bearer(OWNER),
        )
        assert r.status_code == 200, r.text
        assert r.json()["waiting_on"] == WaitingOn.DISCOUNT_APPROVAL
        st = (await http.get(deal_path(handle, "status"), headers=bearer(MANAGER))).json()
        assert st["conversation"][0]["answer"] == "Multi-year commitment"
        assert [x["name"] for x in st["terms"]["lines"]] == ["Platform licence", LINES[1].name]
        assert st["margin_source"] == "lines"


async def test_inbox_and_deal_page_show_the_lines_and_the_conversation(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """The manager's inbox shows the multi-line quote and real margin; the page asks and
    the owner answers from the deal page; CRM text is escaped."""
    async with quote_at_manager(dev_env.client, task_queue, settings) as (handle, _, _):
        deal_id = handle.id.split("-", 4)[-1]
        csrf = await sign_in(http, MANAGER)
        inbox = ""
        async for _ in polls():  # the inbox lists from visibility, a moment behind the run
            inbox = (await http.get("/inbox")).text
            if "Platform licence" in inbox:
                break
        assert "Platform licence" in inbox and "Onboarding &lt;b&gt;days&lt;/b&gt;" in inbox
        assert "<b>days</b>" not in inbox
        assert "real margin 52.3% (from line costs)" in inbox
        url = f"/deals/memory/{deal_id}/decide"
        r = await http.post(url, data={"decision": "ask", "reason": "Term?", "csrf": csrf})
        assert r.status_code == 200, r.text
        assert "question sent to the rep" in r.text
        assert "Deal-desk conversation" in r.text and "Term?" in r.text

        csrf = await sign_in(http, OWNER)
        page = (await http.get(f"/deals/memory/{deal_id}")).text
        assert "The deal desk asks you" in page
        r = await http.post(url, data={"decision": "answer", "reason": "3 years", "csrf": csrf})
        assert r.status_code == 200, r.text
        assert "answer sent to the deal desk" in r.text
        st = await until(handle, lambda s: s.waiting_on == WaitingOn.DISCOUNT_APPROVAL, WAIT)
        assert st.conversation[0].answer == "3 years" and st.owner == [MANAGER]
        http.cookies.clear()


async def test_the_link_page_shows_the_quote_and_asks_without_spending_the_link(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """A link's approver sees the lines and may ask the rep; the link still decides later."""
    async with quote_at_manager(dev_env.client, task_queue, settings) as (handle, _, notifier):
        link = path_of(links_sent_to(notifier, MANAGER)["approve"])
        page = (await http.get(link)).text
        assert "Platform licence" in page and "(from line costs)" in page
        r = await http.post(link, data={"reason": "Which term?", "action": "ask"})
        assert r.status_code == 200, r.text
        assert "Question sent" in r.text
        await until(handle, lambda s: s.waiting_on == WaitingOn.INFO_REQUEST, WAIT)
        assert (await http.get(link)).status_code == 200  # not spent
        await handle.execute_update("answer_info", {"by": OWNER, "answer": "Two years"})
        await until(handle, lambda s: s.waiting_on == WaitingOn.DISCOUNT_APPROVAL, WAIT)
        r = await http.post(link, data={"reason": "Fine for two years"})
        assert r.status_code == 200, r.text
        st = await until(handle, lambda s: bool(s.approvals), WAIT)
        assert st.approvals[0].approver == MANAGER


async def test_status_prints_the_lines_margin_and_question(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings
) -> None:
    """`handoff status` output names each line, the margin's source and the question."""
    async with quote_at_manager(dev_env.client, task_queue, settings) as (handle, _, _):
        await handle.execute_update(
            "request_info", {"approver": MANAGER, "question": "[red]Why[/red] now?"}
        )
        await asyncio.wait_for(
            until(handle, lambda s: s.waiting_on == WaitingOn.INFO_REQUEST, WAIT), WAIT
        )
        out = Console(record=True, width=200)
        render_status(out, await status(handle))
        text = out.export_text()
        assert "Platform licence: 40 x 1,000.00, 20% off → 32,000.00; margin 62.5%" in text
        assert "real margin 52.3% (from line costs)" in text
        assert "[red]Why[/red] now?" in text  # shown as written, never as markup
        assert "awaiting the rep's answer" in text


async def test_the_stall_board_shows_the_rep_owing_the_answer(
    dev_env: WorkflowEnvironment, task_queue: str, settings: Settings, http: httpx.AsyncClient
) -> None:
    """While a question is open the board groups the deal under info_request, owed by the
    rep; the search attribute lets `list --waiting-on info_request` find it."""
    async with quote_at_manager(dev_env.client, task_queue, settings) as (handle, _, _):
        await handle.execute_update(
            "request_info", {"approver": MANAGER, "question": "Which sites?"}
        )

        async def board_group() -> list[dict[str, Any]]:
            deadline = asyncio.get_running_loop().time() + WAIT
            while True:
                board = (await http.get("/api/stuck", headers=bearer(OWNER))).json()
                groups = [g for g in board["groups"] if g["waiting_on"] == "info_request"]
                mine = [i for g in groups for i in g["items"] if i["workflow_id"] == handle.id]
                if mine:
                    return mine
                assert asyncio.get_running_loop().time() < deadline, board
                await asyncio.sleep(0.3)

        [item] = await board_group()
        assert item["owner"] == [OWNER] and "Which sites?" in item["waiting_for"]
        query = f"WaitingOn = 'info_request' AND WorkflowId = '{handle.id}'"
        deadline = asyncio.get_running_loop().time() + WAIT
        while not (found := await handoffs.list_open(dev_env.client, query)):
            assert asyncio.get_running_loop().time() < deadline, "never listed"
            await asyncio.sleep(0.3)  # visibility catches up on its own time
        assert [x.workflow_id for x in found] == [handle.id]

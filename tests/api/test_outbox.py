"""The development outbox: under `handoff dev` every notice is kept and shown at
`/outbox` with its signed links, which lead to the link page; never in production."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx
import pytest
from support.api import api_client, make_settings
from support.handoffs import (
    MANAGER,
    QUALIFY_EVIDENCE,
    give_evidence,
    make_deal,
    polls,
    start,
    terminate_started,
    tolerant_of_load,
    until,
)
from temporalio.testing import WorkflowEnvironment

from activities.notify import Notice
from connectors.memory import MemoryConnector
from worker.http.links import SignedLinks
from worker.processes.notifiers import make_notifier
from worker.processes.outbox import OutboxNotifier, read_outbox
from worker.processes.worker import build_worker

LINK = re.compile(r'href="(http://testserver/links/[^"]+)"')


async def test_a_sent_approval_shows_in_the_outbox_and_its_link_opens_the_link_page(
    dev_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    """The worker's approval request lands at /outbox with approve and reject links;
    following the approve link shows the deal's confirmation page."""
    settings = make_settings(tmp_path, notifier="dev")
    deal = make_deal(f"D-{uuid.uuid4().hex[:8]}", discount=20)
    notifier = make_notifier(settings)
    assert isinstance(notifier, OutboxNotifier)
    async with (
        tolerant_of_load(
            build_worker(
                dev_env.client,
                task_queue=task_queue,
                connector=MemoryConnector([deal]),
                notifier=notifier,
                links=SignedLinks.from_settings(settings),
            )
        ),
        api_client(settings, dev_env.client) as http,
    ):
        try:
            handle = await start(dev_env.client, task_queue, deal.id)
            await give_evidence(handle, *QUALIFY_EVIDENCE)
            await until(handle, lambda s: s.pending_approval is not None)
            page = await _outbox_with_links(http)
            assert f"To {MANAGER}" in page.text
            assert deal.id in page.text
            links = LINK.findall(page.text)
            assert len(links) == 2  # approve and reject, for the one approver
            confirm = await http.get(links[0].removeprefix("http://testserver"))
            assert confirm.status_code == 200, confirm.text
            assert deal.id in confirm.text or deal.name in confirm.text
        finally:
            await terminate_started(dev_env.client, task_queue)


async def _outbox_with_links(http: httpx.AsyncClient) -> httpx.Response:
    """/outbox once the approval notice (sent just after the status shows it) is there."""
    async for _ in polls(every=0.1):
        page = await http.get("/outbox")
        assert page.status_code == 200
        if LINK.search(page.text):
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"no notice with links on /outbox:\n{page.text}")


def test_outbox_lists_newest_first_and_skips_a_torn_line(tmp_path: Path) -> None:
    """Two notices come back newest first; a half-written last line is skipped."""
    outbox = OutboxNotifier(tmp_path)
    for n in (1, 2):
        outbox.send(
            Notice(to=[MANAGER], subject=f"notice {n}", body="", crm="memory", deal_id="D",
                   workflow_id="lead-to-cash-memory-D")
        )  # fmt: skip
    with (tmp_path / "outbox.jsonl").open("a") as f:
        f.write('{"sent_at": "2026')
    assert [s.notice.subject for s in read_outbox(tmp_path)] == ["notice 2", "notice 1"]
    assert (tmp_path / "outbox.jsonl").stat().st_mode & 0o077 == 0


async def test_outbox_is_absent_without_the_dev_notifier(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """With the log notifier (the default) /outbox is not served; production refuses dev."""
    async with api_client(make_settings(tmp_path), dev_env.client) as http:
        assert (await http.get("/outbox")).status_code == 404
    with pytest.raises(ValueError, match="production"):
        make_notifier(make_settings(tmp_path, notifier="dev", environment="production"))

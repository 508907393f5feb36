"""`/outbox`: the development outbox page (only when `HANDOFF_NOTIFIER=dev`).

Every notice the dev worker sent, newest first, with its signed approve and reject links
clickable, so an approval link can be tried in a stock `handoff dev`. No sign-in, like
MailHog: `handoff dev` binds 127.0.0.1, and the router is never mounted in production.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from worker.http.deps import handoff_path
from worker.http.render import page
from worker.processes.outbox import SentNotice, read_outbox
from worker.settings import Settings
from workflows import registry

router = APIRouter(include_in_schema=False)


def outbox_enabled(settings: Settings) -> bool:
    return settings.notifier == "dev" and settings.environment != "production"


def deal_page(sent: SentNotice) -> str | None:
    """The web page of the handoff a notice is about, if its workflow id names one."""
    parsed = registry.parse_workflow_id(sent.notice.workflow_id)
    if parsed is None:
        return None
    handoff_type, crm, deal_id = parsed
    return handoff_path(handoff_type.name, crm, deal_id)


@router.get("/outbox")
async def outbox(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    sent = [(s, deal_page(s)) for s in read_outbox(settings.state_dir)]
    return page(request, "outbox.html", sent=sent, user=None)

"""Jinja2 templates for the web pages, with the few filters they need."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from worker.http.deps import handoff_path
from worker.wording import humane, role, words
from workflows.quote import line_words, margin_words

TEMPLATES = Path(__file__).parent / "templates"


def when(at: datetime | None) -> str:
    """`2026-05-01 14:00 UTC`, or a dash."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if at else "—"


def age(seconds: float) -> str:
    """A short duration: `2d 3h`, `4h 10m`, `12m`."""
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {rest // 60}m" if hours else f"{rest // 60}m"


def since(at: datetime | None) -> str:
    return age((datetime.now(UTC) - at).total_seconds()) if at else "—"


def money(value: float) -> str:
    return f"{value:,.2f}"


def templates() -> Jinja2Templates:
    """The page templates (autoescaped) with `when`, `age`, `since` and `money` filters
    (and `humane`, `role`, `words` from `worker.wording`)
    and the `handoff_path(type, crm, deal_id)` global."""
    env = Jinja2Templates(directory=TEMPLATES)
    env.env.filters.update(
        when=when, age=age, since=since, money=money, humane=humane, role=role, words=words
    )
    env.env.filters["line"] = line_words
    env.env.globals.update(handoff_path=handoff_path, margin_words=margin_words)
    return env


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """Render a page; never cached, and never leaks its URL (links carry tokens)."""
    tpl: Jinja2Templates = request.app.state.templates
    response = tpl.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response

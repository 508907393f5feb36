"""Notifiers: the webhook posts the notice with its links; the factory reads the environment."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.notify import LogNotifier, Notice
from worker.processes.notifiers import SmtpNotifier, WebhookNotifier, make_notifier
from worker.settings import Settings

NOTICE = Notice(
    to=["maya.manager@example.com"],
    subject="Approve 30% on Acme",
    body="Tier vp",
    crm="memory",
    deal_id="D-1",
    workflow_id="lead-to-cash-memory-D-1",
    links={"approve": "http://h/links/a", "reject": "http://h/links/r"},
)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local incoming-webhook endpoint that records what it receives."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_subject_recipients_and_links(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    """The chat message names who must act and carries the approve and reject links."""
    url, received = webhook
    WebhookNotifier(url).send(NOTICE)
    assert len(received) == 1
    text = received[0]["text"]
    assert "*Approve 30% on Acme*" in text
    assert "For: maya.manager@example.com" in text
    assert "Approve: http://h/links/a" in text
    assert "Reject: http://h/links/r" in text
    assert received[0]["handoff"]["workflow_id"] == "lead-to-cash-memory-D-1"


def test_make_notifier_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """log by default, smtp and webhook when asked; an unknown kind names the allowed ones."""

    def settings() -> Settings:
        return Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]

    monkeypatch.delenv("HANDOFF_NOTIFIER", raising=False)
    assert isinstance(make_notifier(settings()), LogNotifier)
    monkeypatch.setenv("HANDOFF_NOTIFIER", "smtp")
    monkeypatch.setenv("HANDOFF_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("HANDOFF_SMTP_STARTTLS", "false")
    smtp = make_notifier(settings())
    assert smtp == SmtpNotifier(host="mail.example.com", starttls=False)
    monkeypatch.setenv("HANDOFF_NOTIFIER", "webhook")
    with pytest.raises(ValueError, match="HANDOFF_WEBHOOK_URL"):
        make_notifier(settings())
    monkeypatch.setenv("HANDOFF_WEBHOOK_URL", "https://hooks.example.com/x")
    assert make_notifier(settings()) == WebhookNotifier("https://hooks.example.com/x")
    monkeypatch.setenv("HANDOFF_NOTIFIER", "pigeon")
    with pytest.raises(ValidationError, match="'log', 'smtp', 'webhook' or 'dev'"):
        settings()

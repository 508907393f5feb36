"""Notifiers: how approval requests, reminders and escalations reach people.

`LogNotifier` (in `activities/notify.py`) writes them to the log; `SmtpNotifier` sends
email; `WebhookNotifier` posts to a Slack- or Teams-style incoming webhook. Notifiers
run in activity threads, so they are plain blocking code. `make_notifier()` picks one
from the environment:

| variable | default | meaning |
|---|---|---|
| `HANDOFF_NOTIFIER` | `log` | `log`, `smtp`, `webhook`; `dev` keeps them for `/outbox` |
| `HANDOFF_SMTP_HOST` / `_PORT` | `localhost` / `587` | the mail relay |
| `HANDOFF_SMTP_USERNAME` / `_PASSWORD` | none | login, if the relay needs one |
| `HANDOFF_SMTP_STARTTLS` | `true` | upgrade the connection with STARTTLS |
| `HANDOFF_SMTP_FROM` | `handoff@localhost` | the sender address |
| `HANDOFF_WEBHOOK_URL` | none | the incoming webhook URL (a secret) |
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from activities.notify import LogNotifier, Notice, Notifier
from worker.logging import register_secrets
from worker.settings import Settings
from worker.wording import humane

WEBHOOK_TIMEOUT_S = 10.0


def _body(notice: Notice) -> str:
    lines = [
        humane(notice.body),
        "",
        f"Deal {notice.deal_id} in {notice.crm} ({notice.workflow_id}).",
    ]
    for name, url in sorted(notice.links.items()):
        lines.append(f"{name.capitalize()}: {url}")
    return "\n".join(lines)


@dataclass(frozen=True)
class SmtpNotifier:
    """Sends each notice as a plain-text email (one message to all its recipients)."""

    host: str
    port: int = 587
    sender: str = "handoff@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True

    def send(self, notice: Notice) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"] = self.sender, ", ".join(notice.to)
        msg["Subject"] = humane(notice.subject)
        msg["X-Handoff-Workflow"] = notice.workflow_id
        msg.set_content(_body(notice))
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(msg)


@dataclass(frozen=True)
class WebhookNotifier:
    """Posts `{"text": ...}` to an incoming webhook (Slack, Teams, Mattermost...)."""

    url: str = field(repr=False)  # the URL is the credential
    timeout_s: float = WEBHOOK_TIMEOUT_S

    def payload(self, notice: Notice) -> dict[str, object]:
        mentions = ", ".join(notice.to)
        return {
            "text": f"*{humane(notice.subject)}*\nFor: {mentions}\n{_body(notice)}",
            "handoff": {
                "to": notice.to,
                "crm": notice.crm,
                "deal_id": notice.deal_id,
                "workflow_id": notice.workflow_id,
            },
        }

    def send(self, notice: Notice) -> None:
        """Raises on failure, so the activity retries it (the webhook may be down)."""
        response = httpx.post(self.url, json=self.payload(notice), timeout=self.timeout_s)
        response.raise_for_status()


def make_notifier(settings: Settings) -> Notifier:
    """The notifier configured by `HANDOFF_NOTIFIER` (see the module docstring)."""
    if settings.notifier == "smtp":
        return SmtpNotifier(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )
    if settings.notifier == "webhook":
        if settings.webhook_url is None:
            raise ValueError("HANDOFF_NOTIFIER=webhook needs HANDOFF_WEBHOOK_URL")
        register_secrets(settings.webhook_url.get_secret_value())  # the URL is a credential
        return WebhookNotifier(settings.webhook_url.get_secret_value())
    if settings.notifier == "dev":
        if settings.environment == "production":
            raise ValueError(
                "HANDOFF_NOTIFIER=dev keeps signed links on disk for /outbox; "
                "use log, smtp or webhook in production"
            )
        from worker.processes.outbox import OutboxNotifier

        return OutboxNotifier(settings.state_dir)
    return LogNotifier()

"""Notifications: approval requests, reminders and escalations, through a pluggable notifier.

A notifier only delivers text. For approval requests, an optional `LinkMaker` adds
signed approve/reject links (see `worker/http/links.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import structlog
from pydantic import BaseModel, Field
from temporalio import activity

from activities.stage_events import StageRecorder, approval_nudge, keep

log = structlog.get_logger("handoff.notify")


class Notice(BaseModel):
    """A message for people: who, about which deal, and what they must do."""

    to: list[str]
    subject: str
    body: str
    crm: str
    deal_id: str
    workflow_id: str
    links: dict[str, str] = Field(default_factory=dict)


class ApprovalNotice(BaseModel):
    """An approval request: one per approver, per tier, per round."""

    crm: str
    deal_id: str
    deal_name: str
    workflow_id: str
    round: int
    tier: str
    approvers: list[str]
    discount_percent: float
    amount: float
    net_amount: float
    margin_percent: float
    due_at: datetime | None
    reason: str = Field(description="Why they are asked: first ask, reminder, escalation...")


class NoticeReceipt(BaseModel):
    """Who was told. Links are bearer secrets, so they never go into workflow history."""

    sent_to: list[str]


class Notifier(Protocol):
    """Delivers a notice (log, SMTP, chat webhook...). Must be safe to call twice."""

    def send(self, notice: Notice) -> None: ...


class LinkMaker(Protocol):
    """Makes signed approve/reject links for one approver of one approval round."""

    def links_for(self, notice: ApprovalNotice, approver: str) -> dict[str, str]: ...


class LogNotifier:
    """Writes notices to the log: the default in development."""

    def send(self, notice: Notice) -> None:
        log.info(
            "notification",
            to=notice.to,
            subject=notice.subject,
            deal_id=notice.deal_id,
            workflow_id=notice.workflow_id,
            crm=notice.crm,
            links=sorted(notice.links),
        )


class NotifyActivities:
    """Notification activities around one notifier and an optional link maker."""

    def __init__(
        self,
        notifier: Notifier,
        links: LinkMaker | None = None,
        events: StageRecorder | None = None,
    ) -> None:
        self.notifier = notifier
        self.link_maker = links
        self.events = events

    @activity.defn(name="notify.send")
    def send(self, notice: Notice) -> NoticeReceipt:
        """Deliver a plain notice (reminders, escalations, tasks owed)."""
        self.notifier.send(notice)
        return NoticeReceipt(sent_to=notice.to)

    @activity.defn(name="notify.request_approval")
    def request_approval(self, req: ApprovalNotice) -> NoticeReceipt:
        """Ask each approver, with signed approve/reject links when configured."""
        receipt = NoticeReceipt(sent_to=[])
        for approver in req.approvers:
            links = self.link_maker.links_for(req, approver) if self.link_maker else {}
            self.notifier.send(
                Notice(
                    to=[approver],
                    subject=(
                        f"[{req.reason}] Approve {req.discount_percent:g}% discount on "
                        f"{req.deal_name or req.deal_id}"
                    ),
                    body=(
                        f"Tier {req.tier}, round {req.round}: list {req.amount:,.2f}, "
                        f"net {req.net_amount:,.2f}, real margin {req.margin_percent:g}%. "
                        f"Due {req.due_at:%Y-%m-%d %H:%M} UTC. A reason is required."
                        if req.due_at
                        else f"Tier {req.tier}, round {req.round}. A reason is required."
                    ),
                    crm=req.crm,
                    deal_id=req.deal_id,
                    workflow_id=req.workflow_id,
                    links=links,
                )
            )
            receipt.sent_to.append(approver)
        if self.events is not None and activity.in_activity():
            info = activity.info()
            event = approval_nudge(
                reason=req.reason,
                workflow_id=req.workflow_id,
                step=f"{info.workflow_run_id}:{info.activity_id}",
                crm=req.crm,
                deal_id=req.deal_id,
                at=info.current_attempt_scheduled_time,
                approvers=req.approvers,
            )
            if event is not None:
                keep(self.events, event)
        return receipt

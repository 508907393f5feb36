"""CRM activities: thin, idempotent wrappers around a `CrmConnector`.

The connector translates SDK errors into `connectors.errors`; here a permanent error
becomes a non-retryable `ApplicationError` (Temporal retries the transient ones).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import count_crm_retry, count_crm_write
from activities.stage_events import StageRecorder, from_write_back, keep
from connectors.base import (
    BillingDocument,
    ChangePage,
    CrmConnector,
    Deal,
    WriteBack,
    WriteReceipt,
)
from connectors.errors import PermanentCrmError, RateLimited, TransientCrmError
from connectors.lines import LineReader, QuoteLines
from connectors.managers import MAX_NAME, ManagerReader, OwnerManager, OwnerRef, clean_email
from workflows.options import CRM_LOOKUP

T = TypeVar("T")

#: Tries of the owner's-manager look-up, as `crm.owner_manager` has them (`CRM_LOOKUP`);
#: `crm.open_deal` answers without a manager after the last one.
MANAGER_LOOKUP_TRIES = CRM_LOOKUP["retry_policy"].maximum_attempts


class DealRef(BaseModel):
    deal_id: str


class BillingRequest(BaseModel):
    deal_id: str
    document: BillingDocument


class BillingReceipt(BaseModel):
    deal_id: str
    document_id: str


class OpenedDeal(BaseModel):
    """What a handoff reads when it opens (`crm.open_deal`): the deal, its quote lines,
    and who manages its owner (or why the CRM could not say)."""

    deal: Deal
    lines: QuoteLines
    manager: OwnerManager | None = None
    manager_problem: str | None = None


class ChangesRequest(BaseModel):
    cursor: str | None = None
    limit: int = 200


def _call(crm: str, what: str, fn: Callable[[], T], *, write: bool = False) -> T:
    """Run one connector call; decide retryability from the connector error tree."""
    count_crm_retry(crm)
    try:
        result = fn()
    except PermanentCrmError as exc:
        if write:
            count_crm_write(crm, "permanent")
        raise ApplicationError(
            f"{what} failed permanently: {exc}", type=type(exc).__name__, non_retryable=True
        ) from exc
    except TransientCrmError as exc:
        if write:
            count_crm_write(crm, "transient")
        if not isinstance(exc, RateLimited) or not exc.retry_after:
            raise
        raise ApplicationError(
            f"{what} rate limited: {exc}",
            type="RateLimited",
            next_retry_delay=timedelta(seconds=exc.retry_after),
        ) from exc
    if write:
        count_crm_write(crm, "ok")
    return result


class CrmActivities:
    """Activities bound to one connector; the worker registers the bound methods."""

    def __init__(self, connector: CrmConnector, events: StageRecorder | None = None) -> None:
        self.connector = connector
        self.events = events

    @activity.defn(name="crm.get_deal")
    def get_deal(self, ref: DealRef) -> Deal:
        """Read the deal in canonical form."""
        return _call(self.connector.crm, "get_deal", lambda: self.connector.get_deal(ref.deal_id))

    @activity.defn(name="crm.get_line_items")
    def get_line_items(self, ref: DealRef) -> QuoteLines:
        """Read the deal's quote lines (none from a connector that cannot read lines)."""
        connector = self.connector
        if not isinstance(connector, LineReader):
            return QuoteLines(deal_id=ref.deal_id)
        return _call(connector.crm, "get_line_items", lambda: connector.get_line_items(ref.deal_id))

    @activity.defn(name="crm.open_deal")
    def open_deal(self, ref: DealRef) -> OpenedDeal:
        """A handoff's opening reads, in one activity: the deal, its quote lines, and its
        owner's manager. The deal and lines are needed (a failure fails the activity, as
        `get_deal` and `get_line_items` do); the manager is not: a look-up that fails on
        the last of `MANAGER_LOOKUP_TRIES` attempts (or for good) answers no manager and
        says why, so the workflow falls back to the policy as with `owner_manager`."""
        deal = self.get_deal(ref)
        lines = self.get_line_items(ref)
        if not deal.owner_email:
            return OpenedDeal(deal=deal, lines=lines)
        attempt = activity.info().attempt if activity.in_activity() else MANAGER_LOOKUP_TRIES
        try:
            manager = self.owner_manager(OwnerRef(owner_email=deal.owner_email))
        except (ApplicationError, TransientCrmError) as exc:
            for_good = isinstance(exc, ApplicationError) and exc.non_retryable
            if for_good or attempt >= MANAGER_LOOKUP_TRIES:
                return OpenedDeal(deal=deal, lines=lines, manager_problem=str(exc))
            raise
        return OpenedDeal(deal=deal, lines=lines, manager=manager)

    @activity.defn(name="crm.owner_manager")
    def owner_manager(self, ref: OwnerRef) -> OwnerManager:
        """Who manages the deal owner, as the CRM says: a manager's email (Salesforce
        `ManagerId`) and/or a primary team (HubSpot teams). Nothing from a connector that
        cannot say, or for an owner that is not an email."""
        connector, owner = self.connector, clean_email(ref.owner_email)
        if owner is None or not isinstance(connector, ManagerReader):
            return OwnerManager(owner_email=ref.owner_email)
        crm = self.connector.crm
        manager = clean_email(_call(crm, "manager_of", lambda: connector.manager_of(owner)))
        team = None if manager else _call(crm, "team_of", lambda: connector.team_of(owner))
        return OwnerManager(
            owner_email=owner, manager=manager, team=(team or "")[:MAX_NAME] or None
        )

    @activity.defn(name="crm.write_back")
    def write_back(self, batch: WriteBack) -> WriteReceipt:
        """Write one stage transition: fields, notes and tasks (idempotent by key)."""
        activity.logger.info(
            "writing back",
            extra={"deal_id": batch.deal_id, "key": batch.key, "fields": sorted(batch.fields)},
        )
        receipt = _call(
            self.connector.crm, "write_back", lambda: self.connector.write_back(batch), write=True
        )
        if self.events is not None and activity.in_activity():  # stall analytics: once written
            info = activity.info()
            event = from_write_back(
                batch,
                workflow_id=info.workflow_id or "",
                crm=self.connector.crm,
                at=info.current_attempt_scheduled_time,
            )
            if event is not None:
                keep(self.events, event)
        return receipt

    @activity.defn(name="crm.create_billing_document")
    def create_billing_document(self, req: BillingRequest) -> BillingReceipt:
        """Create the order or invoice for billing (idempotent by key)."""
        doc_id = _call(
            self.connector.crm,
            "create_billing_document",
            lambda: self.connector.create_billing_document(req.deal_id, req.document),
            write=True,
        )
        return BillingReceipt(deal_id=req.deal_id, document_id=doc_id)

    @activity.defn(name="crm.read_changes")
    def read_changes(self, req: ChangesRequest) -> ChangePage:
        """A page of CRM changes after a cursor (for the change-feed poller)."""
        return _call(
            self.connector.crm,
            "read_changes",
            lambda: self.connector.read_changes(req.cursor, req.limit),
        )

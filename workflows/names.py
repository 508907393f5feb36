"""Every name that crosses a process boundary: task queue, IDs, messages, search attributes.

These are Handoff's public contract (see DESIGN.md); change them only with a migration.
"""

from __future__ import annotations

from enum import StrEnum

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "handoff"


class Stage(StrEnum):
    """The seven lead-to-cash stages, then `done`."""

    QUALIFY = "qualify"
    DEAL_DESK = "deal_desk"
    CLOSE = "close"
    SALES_TO_OPS = "sales_to_ops"
    DELIVERY = "delivery"
    OPS_TO_BILLING = "ops_to_billing"
    CASH = "cash"
    DONE = "done"


class WaitingOn(StrEnum):
    """What an open handoff is waiting on (the `WaitingOn` search attribute)."""

    EVIDENCE = "evidence"
    DISCOUNT_APPROVAL = "discount_approval"
    INFO_REQUEST = "info_request"  # an approver asked the rep a question
    TERMS_UPDATE = "terms_update"
    HANDOFF_FIELDS = "handoff_fields"
    ACCEPTANCE = "acceptance"
    EXCEPTION = "exception"
    CRM = "crm"
    TIME = "time"
    NOTHING = "nothing"


class Msg(StrEnum):
    """Signal and update names. Each message is both a signal and a validated update."""

    ADD_EVIDENCE = "add_evidence"
    APPROVE = "approve"
    REJECT = "reject"
    UPDATE_TERMS = "update_terms"
    RAISE_EXCEPTION = "raise_exception"
    RESOLVE_EXCEPTION = "resolve_exception"
    ACCEPT_HANDOFF = "accept_handoff"
    DELEGATE = "delegate_approval"
    RECALL = "recall_approval"
    DEAL_CHANGED = "deal_changed"
    REASSIGN = "reassign"
    SET_AWAY = "set_away"
    APPLY_POLICY = "apply_policy"
    REQUEST_INFO = "request_info"
    ANSWER_INFO = "answer_info"
    #: A refusal a surface made before any message reached the handoff (a signed link
    #: already used or forwarded, a forged web form): recorded, nothing else changes.
    RECORD_REFUSAL = "record_refusal"


class Refusal(StrEnum):
    """Why a message was refused: the typed code every surface maps to an exit code or an
    HTTP status. A refused update fails with `ApplicationError(reason, code, type=REFUSED)`
    (the code is the error's first detail); a refused signal is recorded with it."""

    NOT_AUTHORISED = "not_authorised"  # the sender may not do this (403)
    NOT_PENDING = "not_pending"  # nothing of the kind is awaited now (409)
    INVALID = "invalid"  # the payload is not a valid message (422 / exit 2)
    UNKNOWN_MESSAGE = "unknown_message"  # no such message name (422)
    DUPLICATE = "duplicate"  # already done; a repeated delivery has the effect of one (409)
    TERMS_FIXED = "terms_fixed"  # terms can no longer change (409)
    ENDED = "ended"  # the handoff is complete (409)
    TOO_LARGE = "too_large"  # the payload is over the size bound (413)


#: `ApplicationError.type` of a refused update.
REFUSED = "Refused"

QUERY_STATUS = "status"
#: Internal signal from the DiscountApproval child to its parent.
APPROVAL_PROGRESS = "approval_progress"

DEAL_ID = SearchAttributeKey.for_keyword("DealId")
CRM = SearchAttributeKey.for_keyword("Crm")
STAGE = SearchAttributeKey.for_keyword("Stage")
WAITING_ON = SearchAttributeKey.for_keyword("WaitingOn")
OWNER = SearchAttributeKey.for_keyword_list("Owner")
DUE_AT = SearchAttributeKey.for_datetime("DueAt")

#: `name=Type` pairs for `temporal server start-dev --search-attribute` and operator setup.
SEARCH_ATTRIBUTES = {
    "DealId": "Keyword",
    "Crm": "Keyword",
    "Stage": "Keyword",
    "WaitingOn": "Keyword",
    "Owner": "KeywordList",
    "DueAt": "Datetime",
}


#: Public names of the built-in handoff types: the first part of their workflow ids.
LEAD_TO_CASH = "lead-to-cash"
RENEWAL = "renewal"


def handoff_id(handoff_type: str, crm: str, deal_id: str) -> str:
    """The one workflow ID of a deal's handoff of one type: `<type>-<crm>-<deal id>`.

    Starting twice is a no-op, never a duplicate. `crm` never contains a hyphen, so the
    id splits back into its parts once the type is known (`workflows.registry`)."""
    return f"{handoff_type}-{crm}-{deal_id}"


def lead_to_cash_id(crm: str, deal_id: str) -> str:
    """The lead-to-cash workflow of a deal (`handoff_id` for `lead-to-cash`)."""
    return handoff_id(LEAD_TO_CASH, crm, deal_id)


def renewal_id(crm: str, deal_id: str) -> str:
    """The renewal-and-expansion workflow of a deal (`handoff_id` for `renewal`)."""
    return handoff_id(RENEWAL, crm, deal_id)


def discount_approval_id(parent_id: str, round_no: int) -> str:
    """The child workflow ID of one approval round."""
    return f"{parent_id}-approval-r{round_no}"

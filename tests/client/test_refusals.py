"""Typed refusals: the client reads the workflow's code, and each surface maps every code
through one table (HTTP status, CLI exit code), never through the words of the reason."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from worker.cli.exit_codes import EXIT_CODES
from worker.client.handoffs import HandoffNotFound, Refused, refusal_of
from worker.http.errors import HTTP_STATUS, status_of
from workflows.names import REFUSED, Refusal

#: The contract from the issue: each code's HTTP status and CLI exit code.
EXPECTED = {
    Refusal.NOT_AUTHORISED: (403, 4),
    Refusal.NOT_PENDING: (409, 1),
    Refusal.DUPLICATE: (409, 1),
    Refusal.TERMS_FIXED: (409, 1),
    Refusal.ENDED: (409, 1),
    Refusal.INVALID: (422, 2),
    Refusal.UNKNOWN_MESSAGE: (422, 2),
    Refusal.TOO_LARGE: (413, 2),
}


def failed_update(message: str, *details: object, type: str = REFUSED) -> WorkflowUpdateFailedError:
    """What the SDK raises when the workflow's update handler refuses."""
    return WorkflowUpdateFailedError(ApplicationError(message, *details, type=type))


def test_every_refusal_code_has_a_status_and_an_exit_code() -> None:
    """Both tables cover every `Refusal`, with the values the public contract names."""
    assert set(HTTP_STATUS) == set(Refusal) == set(EXIT_CODES)
    assert {code: (HTTP_STATUS[code], EXIT_CODES[code]) for code in Refusal} == EXPECTED


@pytest.mark.parametrize("code", list(Refusal))
def test_the_code_is_read_from_the_errors_first_detail(code: Refusal) -> None:
    """`ApplicationError(message, code, type=REFUSED)` becomes `Refused` with that code."""
    refused = refusal_of("approve", failed_update("approve refused: because", code.value))
    assert refused is not None
    assert (refused.code, refused.reason, refused.message) == (code, "because", "approve")
    assert status_of(refused) == EXPECTED[code][0]


def test_the_reason_words_never_decide_the_code() -> None:
    """A reason that reads like a permission problem still maps by its code alone."""
    refused = refusal_of("approve", failed_update("x is not an approver", Refusal.DUPLICATE.value))
    assert refused is not None and refused.code == Refusal.DUPLICATE
    assert status_of(refused) == 409


def test_a_refusal_without_a_code_counts_as_not_pending() -> None:
    """Workflows from before typed codes send no detail: 409 / exit 1, not a crash."""
    refused = refusal_of("accept_handoff", failed_update("accept_handoff refused: not now"))
    assert refused is not None and refused.code == Refusal.NOT_PENDING


def test_an_unknown_code_counts_as_not_pending() -> None:
    """A code this client does not know yet is a conflict, not an error of the surface."""
    refused = refusal_of("approve", failed_update("approve refused: ?", "brand_new_code"))
    assert refused is not None and refused.code == Refusal.NOT_PENDING


def test_other_update_failures_are_not_refusals() -> None:
    """A failure that is not of type REFUSED is left to propagate (a bug, not a refusal)."""
    assert refusal_of("approve", failed_update("boom", type="KeyError")) is None
    assert refusal_of("approve", WorkflowUpdateFailedError(RuntimeError("x"))) is None


def test_an_unknown_handoff_is_404() -> None:
    """Not a refusal: there is no such handoff."""
    assert status_of(HandoffNotFound("no such handoff")) == 404
    assert not isinstance(HandoffNotFound("x"), Refused)

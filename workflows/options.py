"""Timeouts and retry policies for every activity call, in one place.

CRM writes retry forever with capped backoff: a CRM outage delays a handoff, it never
loses one. Permanent CRM errors arrive as non-retryable `ApplicationError`s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy


class ActivityOptions(TypedDict):
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


CRM_READ: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=0,  # unlimited: an outage delays, never loses
    ),
}

CRM_WRITE: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=0,
    ),
}

#: A look-up the handoff can do without (the owner's manager): a few tries, then the
#: workflow falls back to the policy and records why; it never waits on a CRM outage.
CRM_LOOKUP: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
    ),
}

NOTIFY: ActivityOptions = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5),
        maximum_attempts=20,  # a notification that cannot be sent is logged, not fatal
    ),
}

#: Continue-as-new once a run's history passes this many events (Temporal's hard
#: limit is 51,200; the SDK also suggests it earlier).
MAX_HISTORY_EVENTS = 5_000
#: Audit-trail entries kept in `status.history`; older ones are counted, not kept.
MAX_HISTORY_ENTRIES = 500
#: Refusals kept in `status.history`, apart from the entries above, so a flood of refused
#: messages never evicts an approval, evidence, exception or stage change.
MAX_REFUSALS_KEPT = 50
#: The largest signal or update payload a handoff takes (encoded JSON); larger ones are
#: refused and recorded, so no message can grow the state past Temporal's limits.
MAX_MESSAGE_BYTES = 64 * 1024

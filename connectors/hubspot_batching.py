"""Group commit: activity threads that need the same kind of HubSpot call at the same
time share one batch call.

HubSpot's rate limit is per portal, so calls per handoff cap a company's throughput. Its
batch endpoints take up to 100 inputs for *different* records, so concurrent write-backs
of different deals can share a call:

- **No wait when idle.** The first caller sends at once (through the single-record path,
  as before). Callers arriving while a call of that kind is in flight queue up; when it
  returns, the first of them leads the next call for all queued (at most `limit`
  inputs). No timers, no windows.
- **Leadership is handed on.** A leader whose own answer is in passes the lead to the
  next queued caller and returns; nobody is kept sending for others.
- **One call, one token.** The combined call goes through the connector's `_call` like
  any other (pacing, 429 ``Retry-After``, 5xx retries).
- **Isolation.** A member the combined answer does not settle (absent from it, or a
  207's error) runs its own single-record path; so does every member when the combined
  call is refused as a whole (`Rejected`: a 409 on one deal's ``handoff_key``, a 400, a
  shape error; `NotFound`). One deal's problem never fails or duplicates another's: the
  single paths are idempotent (writes are keyed or plain PATCHes). A transient failure
  that outlived the retries (`Unavailable`, `RateLimited`) or `AuthFailed` is shared by
  every member, as each would have met it alone; its activity retries.
- **Keys never meet.** Two callers naming the same record key (a deal id, a
  ``handoff_key``) are never put in one call; the later one waits for the next.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import copy
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from connectors.errors import CrmError, NotFound, Rejected

log = structlog.get_logger(__name__)
I = TypeVar("I")  # noqa: E741 (the item a caller submits)
R = TypeVar("R")
#: A combined call refused as a whole with one of these is retried member by member.
MEMBER_ERRORS = (Rejected, NotFound)


class Fallback:
    """Marks a member the combined answer did not settle: it runs its own single path."""


FALLBACK = Fallback()


@dataclass(eq=False)
class _Member(Generic[I, R]):
    item: I
    size: int
    keys: frozenset[Hashable]
    wake: threading.Event = field(default_factory=threading.Event)
    batch: list[_Member[I, R]] = field(default_factory=list)  # set when it leads
    done: bool = False
    fallback: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[I, R]):
    """One kind of call (e.g. "deals batch/update"), shared by concurrent callers.

    `one(item)` is the single-caller path (also the fallback); `many(items)` sends one
    combined call for two or more and answers, per item in order, its result or
    `FALLBACK`. `size(item)` is how many batch inputs the item takes, `keys(item)` the
    record keys it touches."""

    def __init__(
        self,
        name: str,
        one: Callable[[I], R],
        many: Callable[[list[I]], Sequence[R | Fallback]],
        *,
        limit: int = 100,
        size: Callable[[I], int] = lambda _: 1,
        keys: Callable[[I], frozenset[Hashable]] = lambda _: frozenset(),
    ) -> None:
        self.name, self._one, self._many, self.limit = name, one, many, limit
        self._size, self._keys = size, keys
        self._lock = threading.Lock()
        self._queue: deque[_Member[I, R]] = deque()
        self._queued = threading.Condition(self._lock)
        self._busy = False
        #: For inspection: calls sent, callers they carried, combined calls, fallbacks.
        self.sent = self.carried = self.combined = self.fallbacks = 0

    def submit(self, item: I) -> R:
        """`item`'s result: from a call it shares with concurrent callers, or its own."""
        member: _Member[I, R] = _Member(item, self._size(item), self._keys(item))
        if member.size > self.limit:
            return self._one(item)  # too big to share a call
        with self._lock:
            self._queue.append(member)
            self._queued.notify_all()
            if not self._busy:
                self._busy = True
                member.batch = self._take()  # just this caller: nobody else is queued
        while not member.done:
            if member.batch:
                self._lead(member)
            else:
                member.wake.wait()
        if member.error is not None:
            raise member.error
        if member.fallback:
            with self._lock:
                self.fallbacks += 1
            return self._one(item)
        return member.result  # type: ignore[return-value]  # set with done, not None-typed

    def wait_queued(self, n: int, timeout: float) -> bool:
        """Wait until at least `n` callers are queued behind the call in flight (tests
        force overlap with it); False on timeout."""
        with self._queued:
            return self._queued.wait_for(lambda: len(self._queue) >= n, timeout)

    def _lead(self, me: _Member[I, R]) -> None:
        """Send `me`'s batch (the queue's head members when the lead came to it), settle
        them, then hand the lead, with the next batch, to the next queued caller."""
        batch, me.batch = me.batch, []
        try:
            self._send(batch)
        finally:
            with self._lock:
                for member in batch:
                    member.done = True
                    member.wake.set()
                if self._queue:
                    following = self._take()
                    following[0].batch = following
                    following[0].wake.set()
                else:
                    self._busy = False

    def _take(self) -> list[_Member[I, R]]:
        """The queue's head, then every queued member that fits (inputs, keys) in order;
        the rest stay queued."""
        batch: list[_Member[I, R]] = []
        inputs, seen = 0, set[Hashable]()
        kept: deque[_Member[I, R]] = deque()
        while self._queue:
            member = self._queue.popleft()
            if batch and (inputs + member.size > self.limit or member.keys & seen):
                kept.append(member)
                continue
            batch.append(member)
            inputs += member.size
            seen |= member.keys
        self._queue = kept
        self.sent += 1
        self.carried += len(batch)
        return batch

    def _send(self, batch: list[_Member[I, R]]) -> None:
        if len(batch) == 1:
            (alone,) = batch
            try:
                alone.result = self._one(alone.item)
            except BaseException as exc:
                alone.error = exc
            return
        try:
            answers = self._many([m.item for m in batch])
        except MEMBER_ERRORS as exc:
            log.info(
                "hubspot_group_commit_fallback",
                call=self.name,
                members=len(batch),
                error=type(exc).__name__,
                status=exc.status,
            )
            for member in batch:
                member.fallback = True
            return
        except CrmError as exc:
            for member in batch:
                member.error = copy.copy(exc)  # each thread raises (and tracebacks) its own
            return
        except BaseException as exc:  # a bug: every member sees it
            for member in batch:
                member.error = exc
            return
        self.combined += 1
        for member, answer in zip(batch, answers, strict=True):
            if isinstance(answer, Fallback):
                member.fallback = True
            else:
                member.result = answer


#: Threads that send one write-back's independent calls at once (`together`).
_STEPS = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="hubspot-step")


def together(steps: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run a write-back's independent calls (field PATCH, note and task creates, task
    completions) at once: one round trip of latency instead of one per call. Every call
    finishes before the first error is raised, so a retried activity never races calls
    of its own earlier attempt. One call (or none) runs on the caller's thread."""
    if len(steps) <= 1:
        return {name: step() for name, step in steps.items()}
    running = {
        name: _STEPS.submit(contextvars.copy_context().run, step) for name, step in steps.items()
    }
    concurrent.futures.wait(running.values())
    for future in running.values():
        if (error := future.exception()) is not None:
            raise error
    return {name: future.result() for name, future in running.items()}

"""The message inbox: every message, as a signal or an update, routed to its part.

Messages are dynamic signal and update handlers on `HandoffWorkflow`, and each part
(evidence, exceptions, contracts, the desk...) owns the names it handles. A refused
signal is recorded in `status.history`; a refused update is rejected with a typed
`Refusal` code and recorded too. Handlers that await run one at a time under a lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from workflows import names
from workflows.kit.dispatch import Handler, No, Part, parse, raw_claimed_by
from workflows.kit.patches import patched
from workflows.messages import Receipt
from workflows.names import Refusal, WaitingOn

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow

#: `workflow.patched` id: message handlers that await run one at a time.
HANDLER_LOCK = "handler-lock"


class Inbox:
    """Routes one handoff's messages (see the module docstring)."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h
        self._lock = asyncio.Lock()

    def handlers(self) -> dict[str, Handler]:
        """Message name → handler, gathered from the parts."""
        h = self._h
        parts: list[Part | None] = [
            h.audit,
            h.evidence,
            h.exceptions,
            h.contracts,
            h.inbound,
            h.staff,
            h.policy_move,
            h.desk,
        ]
        return {name: hd for part in parts if part is not None for name, hd in part.handlers()}

    def _resolve(
        self, name: str, args: Sequence[RawValue]
    ) -> tuple[Handler | None, Any, No | None]:
        handlers = self.handlers()
        handler = handlers.get(name)
        if handler is None:
            accepted = ", ".join(sorted(handlers))
            return None, None, No(Refusal.UNKNOWN_MESSAGE, f"unknown message; accepted: {accepted}")
        msg = parse(handler.model, args)
        if isinstance(msg, No):
            return handler, None, msg
        if self._h.state.done:
            return handler, msg, No(Refusal.ENDED, "this handoff is complete")
        return handler, msg, handler.check(msg)

    async def signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A message as a fire-and-forget signal; a refusal goes to the audit trail."""
        h = self._h
        handler, msg, no = self._resolve(name, args)
        if handler is None or no is not None:
            assert no is not None
            h.audit.refuse(name, no, raw_claimed_by(args))
            h.changed = True  # wake the wait loop: its history grew
            return
        async with self._one_at_a_time():
            await handler.apply(msg)
        h.changed = True

    async def update(self, name: str, args: Sequence[RawValue]) -> Receipt:
        """A message as an update: the caller learns at once if it was refused, and the
        refusal is recorded in the audit trail with who sent it and why."""
        h = self._h
        handler, msg, no = self._resolve(name, args)
        if handler is None or no is not None:
            assert no is not None
            h.audit.refuse(name, no, raw_claimed_by(args))
            h.changed = True
            raise ApplicationError(
                f"{name} refused: {no.reason}", no.code.value, type=names.REFUSED
            )
        async with self._one_at_a_time():
            detail = await handler.apply(msg)
        h.changed = True
        st = h.state
        return Receipt(
            detail=detail,
            stage=st.stage,
            waiting_on=st.waiting.on if st.waiting and not st.done else WaitingOn.NOTHING,
            pending_approval=h.desk.pending() if h.desk else None,
        )

    def _one_at_a_time(self) -> AbstractAsyncContextManager[Any]:
        """The handler lock (runs opened before it replay as they ran: without it)."""
        return self._lock if patched(self._h, HANDLER_LOCK) else nullcontext()

"""The audit trail: every accepted and refused message, stage change and write-back,
with who and when, in `status.history`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import metrics
from workflows.kit.dispatch import No
from workflows.options import MAX_HISTORY_ENTRIES, MAX_REFUSALS_KEPT
from workflows.records import HistoryEntry, HistoryKind

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow


class Audit:
    """Appends to the handoff's history, keeping the newest entries."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def record(
        self, kind: HistoryKind, detail: str, by: str | None = None, accepted: bool = True
    ) -> None:
        st = self._h.state
        st.history.append(
            HistoryEntry(at=workflow.now(), kind=kind, detail=detail, by=by, accepted=accepted)
        )
        if len(st.history) > MAX_HISTORY_ENTRIES:
            st.history_dropped += len(st.history) - MAX_HISTORY_ENTRIES
            del st.history[: len(st.history) - MAX_HISTORY_ENTRIES]

    def refuse(self, message: str, no: No, by: str | None) -> None:
        """Record a refused message, who sent it and why, apart from the rest of the
        trail (so refusals never evict it), and count it."""
        st = self._h.state
        st.refusals.append(
            HistoryEntry(
                at=workflow.now(),
                kind="refused",
                detail=f"{message} refused: {no.reason}",
                by=by,
                accepted=False,
                code=no.code.value,
            )
        )
        st.refusals_total += 1
        del st.refusals[:-MAX_REFUSALS_KEPT]
        metrics.count_refusal(message)
        workflow.logger.info("refused %s (%s): %s", message, no.code, no.reason)

    def trail(self) -> list[HistoryEntry]:
        """The audit trail for `status.history`: entries and kept refusals, in time order."""
        st = self._h.state
        return sorted([*st.history, *st.refusals], key=lambda e: e.at)

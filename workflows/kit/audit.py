"""The audit trail: every accepted and refused message, stage change and write-back,
with who and when, in `status.history`.

Refusals are kept apart from the rest (so a flood of them never evicts an approval) and
counted. Besides the handoff's own refusals, it records those a surface made before any
message reached the handoff (`record_refusal`: a signed link already used or forwarded,
a forged web form), so every refusal of every surface is in one trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

from workflows import metrics
from workflows.kit.dispatch import Handler, No
from workflows.messages import SurfaceRefusalIn
from workflows.names import Msg
from workflows.options import MAX_HISTORY_ENTRIES, MAX_REFUSALS_KEPT
from workflows.records import HistoryEntry, HistoryKind

if TYPE_CHECKING:
    from workflows.kit.handoff import HandoffWorkflow


class Audit:
    """Appends to the handoff's history, keeping the newest entries."""

    def __init__(self, h: HandoffWorkflow) -> None:
        self._h = h

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(Msg.RECORD_REFUSAL, Handler(SurfaceRefusalIn, _anyone, self._surface_refused))]

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

    async def _surface_refused(self, msg: SurfaceRefusalIn) -> str:
        """A surface's refusal, recorded like the handoff's own (and nothing else)."""
        via = msg.surface.replace("_", " ")
        self.refuse(msg.message, No(msg.code, f"{msg.reason} (via {via})"), msg.by)
        return "refusal recorded"

    def trail(self) -> list[HistoryEntry]:
        """The audit trail for `status.history`: entries and kept refusals, in time order."""
        st = self._h.state
        return sorted([*st.history, *st.refusals], key=lambda e: e.at)


def _anyone(_: SurfaceRefusalIn) -> No | None:
    """Recording a refusal changes nothing but the kept refusals, so it is never refused."""
    return None

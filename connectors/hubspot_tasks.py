"""HubSpot tasks Handoff opened earlier: completed (and moved) when their wait ends.

Completing only is one tasks batch update addressed by ``handoff_key``, shared with
concurrent write-backs of other deals (group commit); moving some reads them first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

from connectors import hubspot_wire as wire
from connectors.base import WriteBack
from connectors.hubspot_batching import Fallback, GroupCommit
from connectors.hubspot_wire import BATCH_LIMIT, KEY_PROPERTY

if TYPE_CHECKING:
    from connectors.hubspot import HubSpotConnector

COMPLETED = "COMPLETED"
#: (object type, deal id, keys, properties) → key → (record id, properties)
ReadByKey = Callable[..., dict[str, tuple[str, dict[str, str]]]]


@dataclass(frozen=True)
class _Complete:
    deal_id: str
    keys: tuple[str, ...]


def _complete_keys(item: _Complete) -> frozenset[Hashable]:
    return frozenset(item.keys)


class HubSpotTasks:
    """Settling the tasks of ended waits for `HubSpotWrites`."""

    def __init__(self, connector: HubSpotConnector, read_by_key: ReadByKey) -> None:
        self._c, self._read_by_key = connector, read_by_key
        self.completions = GroupCommit[_Complete, list[str]](
            "tasks batch/update",
            self._complete_one,
            self._complete_many,
            limit=BATCH_LIMIT,
            size=lambda item: len(item.keys),
            keys=_complete_keys,
        )

    def settle(self, batch: WriteBack) -> list[str]:
        """Complete and reassign open tasks by key. Completing only: one batch update
        addressed by ``handoff_key`` (no read; a task the rep closed already is set
        COMPLETED again, which changes nothing). Moving any: one batch read first, so a
        closed task keeps its owner, then one batch update for both."""
        keys = list(dict.fromkeys([*batch.complete_tasks, *batch.reassign_tasks]))
        if not keys:
            return []
        if not batch.reassign_tasks:
            return self.completions.submit(_Complete(batch.deal_id, tuple(keys)))
        tasks = self._read_by_key("tasks", batch.deal_id, keys, ["hs_task_status"])
        updates: dict[str, dict[str, str]] = {}
        completed: list[str] = []
        for key, (rid, props) in tasks.items():
            if props.get("hs_task_status") == COMPLETED:
                continue  # already closed: neither completed again nor moved
            if key in batch.complete_tasks:
                updates[rid] = {"hs_task_status": COMPLETED}
                completed.append(rid)
            elif key in batch.reassign_tasks:
                email = batch.reassign_tasks[key]
                owner = self._c.owner_id(email)
                updates[rid] = {"handoff_owner_email": email, "hubspot_owner_id": owner or ""}
        for start in range(0, len(updates), BATCH_LIMIT):
            chunk = list(updates)[start : start + BATCH_LIMIT]
            body = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(id=rid, properties=updates[rid]) for rid in chunk
                ]
            )
            self._c._call(
                "tasks",
                batch.deal_id,
                partial(self._c._batch.update_with_http_info, "tasks", body, **self._c._opts()),
                _no_errors,
            )
        return completed

    def _complete_one(self, item: _Complete) -> list[str]:
        """Set the tasks of the item's keys COMPLETED, addressed by ``handoff_key``, 100
        per call; a key with no task is skipped. The ids of the tasks now completed, in
        key order."""
        done: dict[str, str] = {}
        for start in range(0, len(item.keys), BATCH_LIMIT):
            done |= self._complete(item.deal_id, item.keys[start : start + BATCH_LIMIT])
        return [done[k] for k in item.keys if k in done]

    def _complete_many(self, items: list[_Complete]) -> list[list[str] | Fallback]:
        """One tasks batch update by ``handoff_key`` for every item's keys."""
        done = self._complete(f"{len(items)} deals", [k for i in items for k in i.keys])
        return [[done[k] for k in item.keys if k in done] for item in items]

    def _complete(self, where: str, keys: Sequence[str]) -> dict[str, str]:
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(
                    id=key,
                    id_property=KEY_PROPERTY,
                    # the key again, unchanged: the answer then names each record's key
                    properties={"hs_task_status": COMPLETED, KEY_PROPERTY: key},
                )
                for key in keys
            ]
        )
        rows = self._c._call(
            "tasks",
            where,
            partial(self._c._batch.update_with_http_info, "tasks", body, **self._c._opts()),
            partial(wire.batch_records, tolerate_missing=True),
        )
        return {props.get(KEY_PROPERTY, ""): rid for rid, props in rows}


def _no_errors(data: Any) -> None:
    wire.batch_records(data, tolerate_missing=False)

"""HubSpot write-back: compare, write fields, create timeline entries, settle tasks.

One `WriteBack` costs at most: a GET of the deal when it names ``expected`` fields (the
compare, with ``hs_lastmodifieddate``), one PATCH of the fields, one batch create per
object type with records (notes, tasks), each created *with* its deal association in the
same call, and one batch update for ``complete_tasks`` (addressed by ``handoff_key``), with
one batch read of the tasks before it only when ``reassign_tasks`` moves some. Nothing to
do costs nothing.

Idempotency: ``handoff_key`` is a unique property, so creating a record whose key exists
fails (409 CONFLICT, or a 400 naming the property) and creates nothing. Only then (a
retried activity, or a lost response) are the keys read back with one batch read, and
only the missing ones created.

HubSpot has no conditional PATCH: a rep's edit landing between the compare and the PATCH
(a few milliseconds) is not detected.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from hubspot.crm.objects import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectId,
)

from connectors import compare
from connectors import hubspot_wire as wire
from connectors.base import WriteBack, WriteReceipt
from connectors.errors import Rejected
from connectors.hubspot_wire import CRM, KEY_PROPERTY

if TYPE_CHECKING:
    from connectors.hubspot import HubSpotConnector

log = structlog.get_logger(__name__)
BATCH_LIMIT = 100
MODIFIED = "hs_lastmodifieddate"
COMPLETED = "COMPLETED"
#: HUBSPOT_DEFINED association type ids from each timeline object to a deal.
TO_DEAL_TYPE = {"notes": 214, "tasks": 216, "orders": 512}


class HubSpotWrites:
    """The write side of `HubSpotConnector` (it owns the calls and their retries)."""

    def __init__(self, connector: HubSpotConnector) -> None:
        self._c = connector

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        fields, conflicts = dict(batch.fields), dict[str, str | None]()
        compared = [name for name in batch.expected if name in fields]
        if compared:
            current = self.current(batch.deal_id, compared)
            conflicts = compare.conflicts(batch.expected, fields, current)
            for name in conflicts:
                del fields[name]
            if conflicts:
                log.info("hubspot_conflicts", deal_id=batch.deal_id, fields=sorted(conflicts))
        if fields:
            self._c.update_deal(batch.deal_id, fields, key=batch.key)
        notes = [(n.key, self._c.note_properties(n)) for n in batch.notes]
        tasks = [(t.key, self._c.task_properties(t)) for t in batch.tasks]
        return WriteReceipt(
            deal_id=batch.deal_id,
            note_ids=self.create_associated("notes", batch.deal_id, notes),
            task_ids=self.create_associated("tasks", batch.deal_id, tasks),
            conflicts=conflicts,
            completed_task_ids=self.settle_tasks(batch),
        )

    # -- compare -------------------------------------------------------------------------
    def current(self, deal_id: str, names: list[str]) -> dict[str, str]:
        """The deal's canonical `names` as HubSpot holds them now (one GET)."""
        props = sorted({MODIFIED, *self._c.mapping.to_crm(dict.fromkeys(names, "")).keys()})
        record = self._c._call(
            "deals",
            deal_id,
            partial(
                self._c._basic.get_by_id_with_http_info,
                *("deals", deal_id),
                properties=props,
                archived=False,
                **self._c._opts(),
            ),
            wire.properties,
        )
        return self._c.mapping.from_crm(record[1])

    # -- timeline entries ----------------------------------------------------------------
    def create_associated(
        self, ot: str, deal_id: str, items: Iterable[tuple[str, dict[str, str]]]
    ) -> list[str]:
        """Create records with their deal association, 100 per call; a key that already
        exists (409) is read back instead of created again."""
        unique = dict(items)  # a key repeated in one call is one record
        keys, ids = list(unique), dict[str, str]()
        for start in range(0, len(keys), BATCH_LIMIT):
            chunk = keys[start : start + BATCH_LIMIT]
            try:
                ids |= self._create(ot, deal_id, {k: unique[k] for k in chunk})
            except Rejected as exc:
                if not _key_taken(exc):
                    raise
                found = {k: rid for k, (rid, _) in self.read_by_key(ot, deal_id, chunk).items()}
                log.info("hubspot_create_repeated", object=ot, existing=len(found))
                ids |= found
                missing = {k: unique[k] for k in chunk if k not in found}
                if missing:
                    ids |= self._create(ot, deal_id, missing)
        absent = [k for k in keys if k not in ids]
        if absent:
            raise Rejected(f"create returned no record for keys {absent}", crm=CRM, object_type=ot)
        return [ids[k] for k in keys]

    def _create(self, ot: str, deal_id: str, items: dict[str, dict[str, str]]) -> dict[str, str]:
        spec = AssociationSpec(
            association_category="HUBSPOT_DEFINED", association_type_id=TO_DEAL_TYPE[ot]
        )
        link = PublicAssociationsForObject(to=PublicObjectId(id=deal_id), types=[spec])
        body = BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(
                    properties={**props, KEY_PROPERTY: key}, associations=[link]
                )
                for key, props in items.items()
            ]
        )
        return self._c._call(
            ot,
            deal_id,
            partial(self._c._batch.create_with_http_info, ot, body, **self._c._opts()),
            wire.upserted_ids,
        )

    def read_by_key(
        self, ot: str, deal_id: str, keys: list[str], names: Iterable[str] = ()
    ) -> dict[str, tuple[str, dict[str, str]]]:
        """Records of `ot` by ``handoff_key`` (one batch read per 100): key → (id, props).
        Keys with no record are left out."""
        found: dict[str, tuple[str, dict[str, str]]] = {}
        wanted = sorted({KEY_PROPERTY, *names})
        for start in range(0, len(keys), BATCH_LIMIT):
            body = BatchReadInputSimplePublicObjectId(
                id_property=KEY_PROPERTY,
                properties=wanted,
                properties_with_history=[],
                inputs=[SimplePublicObjectId(id=k) for k in keys[start : start + BATCH_LIMIT]],
            )
            found |= self._c._call(
                ot,
                deal_id,
                partial(
                    self._c._batch.read_with_http_info, ot, body, archived=False, **self._c._opts()
                ),
                wire.records_by_key,
            )
        return found

    # -- tasks Handoff opened earlier ----------------------------------------------------
    def settle_tasks(self, batch: WriteBack) -> list[str]:
        """Complete and reassign open tasks by key. Completing only: one batch update
        addressed by ``handoff_key`` (no read; a task the rep closed already is set
        COMPLETED again, which changes nothing). Moving any: one batch read first, so a
        closed task keeps its owner, then one batch update for both."""
        keys = list(dict.fromkeys([*batch.complete_tasks, *batch.reassign_tasks]))
        if not keys:
            return []
        if not batch.reassign_tasks:
            return self._complete_by_key(batch.deal_id, keys)
        tasks = self.read_by_key("tasks", batch.deal_id, keys, ["hs_task_status"])
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

    def _complete_by_key(self, deal_id: str, keys: list[str]) -> list[str]:
        """Set the tasks of `keys` COMPLETED, addressed by ``handoff_key``, 100 per call; a
        key with no task is skipped. The ids of the tasks now completed, in key order."""
        done: dict[str, str] = {}
        for start in range(0, len(keys), BATCH_LIMIT):
            body = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(
                        id=key,
                        id_property=KEY_PROPERTY,
                        # the key again, unchanged: the answer then names each record's key
                        properties={"hs_task_status": COMPLETED, KEY_PROPERTY: key},
                    )
                    for key in keys[start : start + BATCH_LIMIT]
                ]
            )
            rows = self._c._call(
                "tasks",
                deal_id,
                partial(self._c._batch.update_with_http_info, "tasks", body, **self._c._opts()),
                partial(wire.batch_records, tolerate_missing=True),
            )
            done |= {props.get(KEY_PROPERTY, ""): rid for rid, props in rows}
        return [done[k] for k in keys if k in done]


def _key_taken(exc: Rejected) -> bool:
    """A create refused because a ``handoff_key`` exists: 409 CONFLICT (what the sandbox
    and HubSpot's unique-value check answer), or a 400 that names the key property."""
    return exc.status == 409 or (exc.status == 400 and KEY_PROPERTY in exc.message)


def _no_errors(data: Any) -> None:
    wire.batch_records(data, tolerate_missing=False)

"""HubSpot write-back: compare, write fields, create timeline entries, settle tasks.

One `WriteBack` costs at most: a GET of the deal when it names ``expected`` fields (the
compare, with ``hs_lastmodifieddate``), one PATCH of the fields, one batch create per
object type with records (notes, tasks), each created *with* its deal association in the
same call, and one batch update for ``complete_tasks`` (addressed by ``handoff_key``), with
one batch read of the tasks before it only when ``reassign_tasks`` moves some. Nothing to
do costs nothing. After the compare the rest are independent and are sent at once
(`together`), so a write-back takes two round trips, not five.

Concurrent write-backs of different deals share these calls (group commit,
`connectors.hubspot_batching`): the compare read becomes one deals batch read, the field
writes one deals batch update, the creates one batch create per object type and the
completions one tasks batch update, each for every deal that needed it at that moment. A
caller alone takes the single-deal path above, and so does any member of a combined call
the answer does not settle.

Idempotency: ``handoff_key`` is a unique property, so creating a record whose key exists
fails (409 CONFLICT, or a 400 naming the property) and creates nothing. Only then (a
retried activity, or a lost response) are the keys read back with one batch read, and
only the missing ones created.

HubSpot has no conditional PATCH: a rep's edit landing between the compare and the PATCH
(a few milliseconds) is not detected.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
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
    SimplePublicObjectInput,
)

from connectors import compare
from connectors import hubspot_wire as wire
from connectors.base import WriteBack, WriteReceipt
from connectors.errors import Rejected
from connectors.hubspot_batching import FALLBACK, Fallback, GroupCommit, together
from connectors.hubspot_tasks import HubSpotTasks
from connectors.hubspot_wire import BATCH_LIMIT, CRM, KEY_PROPERTY

if TYPE_CHECKING:
    from connectors.hubspot import HubSpotConnector

log = structlog.get_logger(__name__)
MODIFIED = "hs_lastmodifieddate"
#: HUBSPOT_DEFINED association type ids from each timeline object to a deal.
TO_DEAL_TYPE = {"notes": 214, "tasks": 216, "orders": 512}
Record = tuple[str, dict[str, str], datetime | None]  # id, properties, updatedAt


@dataclass(frozen=True)
class _Read:
    deal_id: str
    names: frozenset[str]


@dataclass(frozen=True)
class _Patch:
    deal_id: str
    props: dict[str, str]


@dataclass(frozen=True)
class _Create:
    ot: str
    deal_id: str
    items: dict[str, dict[str, str]]  # handoff_key → properties


def _deal(item: _Patch) -> frozenset[Hashable]:
    return frozenset([item.deal_id])


def _create_keys(item: _Create) -> frozenset[Hashable]:
    return frozenset(item.items)


class HubSpotWrites:
    """The write side of `HubSpotConnector` (it owns the calls and their retries)."""

    def __init__(self, connector: HubSpotConnector) -> None:
        self._c = connector
        self.reads = GroupCommit[_Read, Record](
            "deals batch/read", self._read_one, self._read_many, limit=BATCH_LIMIT
        )
        self.patches = GroupCommit[_Patch, None](
            "deals batch/update", self._patch_one, self._patch_many, limit=BATCH_LIMIT, keys=_deal
        )
        self.creates = {
            ot: GroupCommit[_Create, list[str]](
                f"{ot} batch/create",
                self._create_alone,
                partial(self._create_many, ot),
                limit=BATCH_LIMIT,
                size=lambda item: len(item.items),
                keys=_create_keys,
            )
            for ot in TO_DEAL_TYPE
        }
        self.tasks = HubSpotTasks(connector, self.read_by_key)

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
        notes = [(n.key, self._c.note_properties(n)) for n in batch.notes]
        tasks = [(t.key, self._c.task_properties(t)) for t in batch.tasks]
        steps: dict[str, Callable[[], Any]] = {}  # independent once compared: sent at once
        if fields:
            steps["fields"] = partial(self._c.update_deal, batch.deal_id, fields, key=batch.key)
        if notes:
            steps["notes"] = partial(self.create_associated, "notes", batch.deal_id, notes)
        if tasks:
            steps["tasks"] = partial(self.create_associated, "tasks", batch.deal_id, tasks)
        if batch.complete_tasks or batch.reassign_tasks:
            steps["completed"] = partial(self.tasks.settle, batch)
        done = together(steps)
        return WriteReceipt(
            deal_id=batch.deal_id,
            note_ids=done.get("notes", []),
            task_ids=done.get("tasks", []),
            conflicts=conflicts,
            completed_task_ids=done.get("completed", []),
        )

    # -- compare -------------------------------------------------------------------------
    def current(self, deal_id: str, names: list[str]) -> dict[str, str]:
        """The deal's canonical `names` as HubSpot holds them now (one GET, or a share
        of a deals batch read)."""
        props = frozenset({MODIFIED, *self._c.mapping.to_crm(dict.fromkeys(names, "")).keys()})
        return self._c.mapping.from_crm(self.read(deal_id, props)[1])

    def read(self, deal_id: str, names: Iterable[str]) -> Record:
        """The deal's properties `names` (and its updatedAt), shared with concurrent reads."""
        return self.reads.submit(_Read(deal_id, frozenset(names)))

    def _read_one(self, item: _Read) -> Record:
        return self._c._call(
            "deals",
            item.deal_id,
            partial(
                self._c._basic.get_by_id_with_http_info,
                *("deals", item.deal_id),
                properties=sorted(item.names),
                archived=False,
                **self._c._opts(),
            ),
            wire.properties,
        )

    def _read_many(self, items: list[_Read]) -> list[Record | Fallback]:
        """One deals batch read for every item (the union of their properties); a deal
        not in the answer (a 207's OBJECT_NOT_FOUND) reads alone."""
        ids = list(dict.fromkeys(i.deal_id for i in items))
        body = BatchReadInputSimplePublicObjectId(
            properties=sorted(set().union(*(i.names for i in items))),
            properties_with_history=[],
            inputs=[SimplePublicObjectId(id=rid) for rid in ids],
        )
        found = self._c._call(
            "deals",
            f"{len(ids)} deals",
            partial(
                self._c._batch.read_with_http_info, "deals", body, archived=False, **self._c._opts()
            ),
            wire.batch_objects,
        )
        answers: list[Record | Fallback] = []
        for item in items:
            record = found.get(item.deal_id)
            if record is None:
                answers.append(FALLBACK)
                continue
            rid, props, updated = record
            answers.append((rid, {k: v for k, v in props.items() if k in item.names}, updated))
        return answers

    # -- deal fields ---------------------------------------------------------------------
    def patch(self, deal_id: str, props: dict[str, str]) -> None:
        """Write the deal's properties (one PATCH, or a share of a deals batch update)."""
        self.patches.submit(_Patch(deal_id, props))

    def _patch_one(self, item: _Patch) -> None:
        body = SimplePublicObjectInput(properties=item.props)
        self._c._call(
            "deals",
            item.deal_id,
            partial(
                self._c._basic.update_with_http_info,
                *("deals", item.deal_id, body),
                **self._c._opts(),
            ),
            wire.properties,
        )

    def _patch_many(self, items: list[_Patch]) -> list[Fallback | None]:
        """One deals batch update (never two inputs for one deal); a deal not in the
        answer (a 207's OBJECT_NOT_FOUND) is written alone."""
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=i.deal_id, properties=i.props) for i in items]
        )
        written = self._c._call(
            "deals",
            f"{len(items)} deals",
            partial(self._c._batch.update_with_http_info, "deals", body, **self._c._opts()),
            wire.batch_objects,
        )
        return [None if i.deal_id in written else FALLBACK for i in items]

    # -- timeline entries ----------------------------------------------------------------
    def create_associated(
        self, ot: str, deal_id: str, items: Iterable[tuple[str, dict[str, str]]]
    ) -> list[str]:
        """Create records with their deal association; the ids in key order. Shared with
        concurrent creates of the same object type for other deals."""
        unique = dict(items)  # a key repeated in one call is one record
        if not unique:
            return []
        return self.creates[ot].submit(_Create(ot, deal_id, unique))

    def _create_alone(self, item: _Create) -> list[str]:
        """Create one deal's records, 100 per call; a key that already exists (409) is
        read back instead of created again."""
        ot, deal_id, unique = item.ot, item.deal_id, item.items
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

    def _create_many(self, ot: str, items: list[_Create]) -> list[list[str] | Fallback]:
        """One batch create for every item's records, each input with its own deal's
        association. Refused as a whole (a key that exists: 409), every item creates
        alone; an item with a key missing from the answer too."""
        inputs = [
            _create_input(ot, item.deal_id, key, props)
            for item in items
            for key, props in item.items.items()
        ]
        body = BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
        ids = self._c._call(
            ot,
            f"{len(items)} deals",
            partial(self._c._batch.create_with_http_info, ot, body, **self._c._opts()),
            wire.upserted_ids,
        )
        return [
            [ids[k] for k in item.items] if all(k in ids for k in item.items) else FALLBACK
            for item in items
        ]

    def _create(self, ot: str, deal_id: str, items: dict[str, dict[str, str]]) -> dict[str, str]:
        body = BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[_create_input(ot, deal_id, key, props) for key, props in items.items()]
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


def _create_input(
    ot: str, deal_id: str, key: str, props: dict[str, str]
) -> SimplePublicObjectBatchInputForCreate:
    """A batch-create input: the record, its ``handoff_key`` and its deal association."""
    spec = AssociationSpec(
        association_category="HUBSPOT_DEFINED", association_type_id=TO_DEAL_TYPE[ot]
    )
    link = PublicAssociationsForObject(to=PublicObjectId(id=deal_id), types=[spec])
    return SimplePublicObjectBatchInputForCreate(
        properties={**props, KEY_PROPERTY: key}, associations=[link]
    )


def _key_taken(exc: Rejected) -> bool:
    """A create refused because a ``handoff_key`` exists: 409 CONFLICT (what the sandbox
    and HubSpot's unique-value check answer), or a 400 that names the key property."""
    return exc.status == 409 or (exc.status == 400 and KEY_PROPERTY in exc.message)

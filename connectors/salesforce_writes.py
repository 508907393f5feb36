"""Salesforce write-back: one composite request per `WriteBack`, usually unread.

The composite request (allOrNone) holds the Opportunity PATCH, an upsert by
``Handoff_Key__c`` per note and task, a PATCH per earlier task to complete or reassign,
and a GET of the Opportunity's ``LastModifiedDate`` and `expected` fields after the
writes. The receipt's ``modified_at`` is that time when every `expected` field then
holds what Handoff saw or wrote (so a known time always means "the CRM held what
Handoff saw"), else None. It counts as one API call and commits or rolls back as a
whole; repeating it (a retried activity, a lost response) upserts the same rows and
changes nothing.

**Conditional write (the usual path, one call).** When the workflow knows the
``LastModifiedDate`` its previous write left (`WriteBack.modified_at`, kept in workflow
state, so it survives restarts and replays), the PATCH carries ``If-Unmodified-Since``
with it and nothing is read first: if nobody touched the deal since, the CRM still holds
what Handoff last saw. Earlier tasks are completed by the ids Handoff got when it opened
them. A 412 ``PRECONDITION_FAILED`` (someone edited the deal, any field) rolls the whole
request back, and the write falls back to the compared path below; so do a first write,
an old history (no known time), a reassignment, and a task whose id Handoff lacks.

**Compared path.** A read comes first when there is something to compare or settle: one
GET of the compared fields with ``LastModifiedDate``, one SOQL query of the tasks by
key, or both in one composite. The fields PATCH then carries ``If-Unmodified-Since`` (the
``LastModifiedDate`` just read); on a 412 the deal is read again, the changed fields
become conflicts and the rest is written.

**Race window.** ``LastModifiedDate`` and HTTP dates have whole seconds, and the check
is "modified after": a person's edit in the *same second* as Handoff's own write keeps
the stamp Handoff knows, so ``If-Unmodified-Since`` cannot see it. Two guards: a write
made while the server clock is still in the known second reads and compares instead
(back-to-back transitions; "now" is the later of the worker's clock and the last
``Date`` Salesforce answered, so a worker clock running ahead of Salesforce's weakens
it); and a person's stage change that reaches the workflow (change feed) clears the
known time. Left open: an edit within the rest of the second after Handoff's write,
followed by Handoff's next write in a later second before the feed delivers the edit.
(``If-Unmodified-Since`` set to the second *before* would refuse Handoff's own write
every time, as its stamp is that second.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from connectors import compare
from connectors import salesforce_wire as wire
from connectors.base import WriteBack, WriteReceipt
from connectors.errors import NotFound, RecordLocked

if TYPE_CHECKING:
    from connectors.salesforce import SalesforceConnector

log = structlog.get_logger(__name__)
KEY_FIELD = "Handoff_Key__c"
MAX_SUBREQUESTS = 25
CONFLICT_ROUNDS = 3
COMPLETED = "Completed"
KNOWN = "known"  # referenceId of the GET of LastModifiedDate after the writes


class SalesforceWrites:
    """The write side of `SalesforceConnector` (it owns the calls and their retries)."""

    def __init__(self, connector: SalesforceConnector) -> None:
        self._c = connector

    def write_back(self, batch: WriteBack) -> WriteReceipt:
        entries = [self._c._note(batch.deal_id, n) | {KEY_FIELD: n.key} for n in batch.notes]
        entries += [self._c._task(batch.deal_id, t) | {KEY_FIELD: t.key} for t in batch.tasks]
        if self._unread(batch):
            receipt = self._conditional(batch, entries)
            if receipt is not None:
                return receipt
        return self._compared(batch, entries)

    # -- the conditional write: one call --------------------------------------------------
    def _unread(self, batch: WriteBack) -> bool:
        """Whether the write can go without a read: Handoff knows when the deal last
        changed, knows the id of every task it completes, moves none, and the server
        clock has left that second (see the module docstring)."""
        known = batch.modified_at
        if known is None or batch.reassign_tasks:
            return False
        if any(key not in batch.open_task_ids for key in batch.complete_tasks):
            return False
        now = max(datetime.now(UTC), self._c._server_time())
        return now.replace(microsecond=0) > known.astimezone(UTC).replace(microsecond=0)

    def _conditional(self, batch: WriteBack, entries: list[dict[str, Any]]) -> WriteReceipt | None:
        """The writes conditional on `batch.modified_at`; None on a 412 (nothing written)."""
        ids = [batch.open_task_ids[key] for key in dict.fromkeys(batch.complete_tasks)]
        updates = {task_id: {"Status": COMPLETED} for task_id in ids}
        stamp = batch.modified_at.isoformat() if batch.modified_at else None
        subs = self._subrequests(
            batch.deal_id, batch.fields, stamp, entries, updates, batch.expected
        )
        try:
            sent = self._send(batch.deal_id, subs)
        except NotFound:
            # a task Handoff opened is gone (someone deleted it): all rolled back; the
            # compared path looks tasks up by key and skips the missing
            log.info("salesforce_task_gone", deal_id=batch.deal_id)
            return None
        if sent is None:
            log.info("salesforce_precondition_failed", deal_id=batch.deal_id, path="unread")
            return None
        created, known = sent
        n = len(batch.notes)
        return WriteReceipt(
            deal_id=batch.deal_id,
            note_ids=created[:n],
            task_ids=created[n:],
            completed_task_ids=ids,
            # no fields written: the deal was not touched, the known time still holds
            modified_at=self._known(batch, batch.fields, known)
            if batch.fields
            else batch.modified_at,
        )

    # -- the compared write: read, compare, write -----------------------------------------
    def _compared(self, batch: WriteBack, entries: list[dict[str, Any]]) -> WriteReceipt:
        deal_id = batch.deal_id
        compared = [name for name in batch.expected if name in batch.fields]
        settle = list(dict.fromkeys([*batch.complete_tasks, *batch.reassign_tasks]))
        owners = {email: self._c._user_id(email) for email in batch.reassign_tasks.values()}
        for _ in range(CONFLICT_ROUNDS):
            current, modified, tasks = self._read(deal_id, compared, settle)
            conflicts = compare.conflicts(batch.expected, batch.fields, current)
            fields = {k: v for k, v in batch.fields.items() if k not in conflicts}
            updates, completed = _settle(batch, tasks, owners)
            subrequests = self._subrequests(
                deal_id, fields, modified, entries, updates, batch.expected
            )
            sent = self._send(deal_id, subrequests)
            if sent is None:
                log.info("salesforce_precondition_failed", deal_id=deal_id, path="compared")
                continue  # the deal changed between the read and the write: read again
            created, known = sent
            if conflicts:
                log.info("salesforce_conflicts", deal_id=deal_id, fields=sorted(conflicts))
            n = len(batch.notes)
            return WriteReceipt(
                deal_id=deal_id,
                note_ids=created[:n],
                task_ids=created[n:],
                conflicts=conflicts,
                completed_task_ids=completed,
                modified_at=None if conflicts else self._known(batch, fields, known),
            )
        raise RecordLocked(
            f"the deal changed under {CONFLICT_ROUNDS} write attempts in a row",
            crm=wire.CRM,
            object_type="Opportunity",
            record_id=deal_id,
        )

    # -- the read before the write -------------------------------------------------------
    def _read(
        self, deal_id: str, compared: list[str], settle: list[str]
    ) -> tuple[dict[str, str], str | None, dict[str, dict[str, Any]]]:
        """(canonical compared fields, LastModifiedDate, tasks by key): 0 or 1 call."""
        v = f"/services/data/v{self._c.api_version}"
        subs: list[dict[str, Any]] = []
        if compared:
            names = self._c.mapping.to_crm(dict.fromkeys(compared, "")).keys()
            fields = ",".join(sorted({"Id", "LastModifiedDate", *names}))
            subs.append(
                {
                    "method": "GET",
                    "url": f"{v}/sobjects/Opportunity/{quote(deal_id, safe='')}?fields={fields}",
                    "referenceId": "deal",
                }
            )
        if settle:
            soql = format_soql(
                "SELECT Id, Status, OwnerId, Handoff_Key__c FROM Task "
                "WHERE Handoff_Key__c IN {} AND WhatId = {}",
                settle,
                deal_id,
            )
            subs.append(
                {"method": "GET", "url": f"{v}/query/?q={quote(soql)}", "referenceId": "tasks"}
            )
        if not subs:
            return {}, None, {}
        bodies = self._composite(deal_id, subs, all_or_none=False)
        record = bodies.get("deal")
        current = self._c._canonical(record) if isinstance(record, dict) else {}
        modified = str(record["LastModifiedDate"]) if isinstance(record, dict) else None
        rows = bodies.get("tasks", {}).get("records", []) if settle else []
        return current, modified, {str(r[KEY_FIELD]): r for r in rows}

    # -- the write -----------------------------------------------------------------------
    def _subrequests(
        self,
        deal_id: str,
        fields: Mapping[str, Any],
        modified: str | None,
        entries: list[dict[str, Any]],
        updates: dict[str, dict[str, Any]],
        watched: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        v = f"/services/data/v{self._c.api_version}"
        subs: list[dict[str, Any]] = []
        props = self._c._to_crm(fields)
        if props:
            patch: dict[str, Any] = {
                "method": "PATCH",
                "url": f"{v}/sobjects/Opportunity/{quote(deal_id, safe='')}",
                "referenceId": "deal",
                "body": props,
            }
            if modified is not None:
                stamp = format_datetime(wire.parse_datetime(modified), usegmt=True)
                patch["httpHeaders"] = {"If-Unmodified-Since": stamp}
            subs.append(patch)
            names = self._c.mapping.to_crm(dict.fromkeys(watched, "")).keys()
            known = ",".join(sorted({"Id", "LastModifiedDate", *names}))
            subs.append(
                {
                    "method": "GET",
                    "url": f"{v}/sobjects/Opportunity/{quote(deal_id, safe='')}?fields={known}",
                    "referenceId": KNOWN,
                }
            )
        for i, record in enumerate(entries):
            key = record[KEY_FIELD]
            subs.append(
                {
                    "method": "PATCH",
                    "url": f"{v}/sobjects/Task/{KEY_FIELD}/{quote(key, safe='')}",
                    "referenceId": f"entry{i}",
                    "body": {k: val for k, val in record.items() if k != KEY_FIELD},
                }
            )
        for i, (task_id, change) in enumerate(updates.items()):
            subs.append(
                {
                    "method": "PATCH",
                    "url": f"{v}/sobjects/Task/{quote(task_id, safe='')}",
                    "referenceId": f"settle{i}",
                    "body": change,
                }
            )
        return subs

    def _send(
        self, deal_id: str, subs: list[dict[str, Any]]
    ) -> tuple[list[str], dict[str, Any] | None] | None:
        """Run the writes (25 per composite): the ids of the upserted entries, in order,
        and the deal as read right after them (None when more than one composite was
        needed, or no fields were written); None when the fields PATCH met a 412 (the
        first composite was rolled back)."""
        ids: list[str] = []
        known: dict[str, Any] | None = None
        chunks = [subs[i : i + MAX_SUBREQUESTS] for i in range(0, len(subs), MAX_SUBREQUESTS)]
        for n, chunk in enumerate(chunks):
            try:
                bodies = self._composite(deal_id, chunk, all_or_none=True)
            except wire.PreconditionFailed:
                if n:
                    raise  # only the first composite carries the conditional PATCH
                return None
            ids += [
                str(bodies[s["referenceId"]]["id"])
                for s in chunk
                if s["referenceId"].startswith("entry")
            ]
            record = bodies.get(KNOWN)
            if len(chunks) == 1 and isinstance(record, dict):
                known = record
        return ids, known

    def _known(
        self, batch: WriteBack, written: Mapping[str, Any], record: dict[str, Any] | None
    ) -> datetime | None:
        """The deal's LastModifiedDate after the write, if every field of
        `batch.expected` then held what Handoff saw or wrote; else None (read next time)."""
        if record is None:
            return None
        # every watched field counts, compared with what this write set or else what
        # Handoff saw: the same rule as the compare before a write
        watched = {name: written.get(name, seen) for name, seen in batch.expected.items()}
        if compare.conflicts(batch.expected, watched, self._c._canonical(record)):
            return None
        return wire.parse_datetime(str(record["LastModifiedDate"]))

    def _composite(
        self, deal_id: str, subs: list[dict[str, Any]], *, all_or_none: bool
    ) -> dict[str, Any]:
        body = {"allOrNone": all_or_none, "compositeRequest": subs}

        def call(sf: Salesforce) -> dict[str, Any]:
            answer = sf.restful("composite", method="POST", json=body)
            return wire.composite_bodies(answer, deal_id)

        return self._c._call("Opportunity", deal_id, call)


def _settle(
    batch: WriteBack, tasks: dict[str, dict[str, Any]], owners: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """PATCH bodies by task id for the open tasks to complete or reassign, and the ids
    completed. Unknown keys and closed tasks are left alone."""
    updates: dict[str, dict[str, Any]] = {}
    completed: list[str] = []
    for key, row in tasks.items():
        if row.get("Status") == COMPLETED:
            continue
        if key in batch.complete_tasks:
            updates[str(row["Id"])] = {"Status": COMPLETED}
            completed.append(str(row["Id"]))
        elif key in batch.reassign_tasks:
            owner = owners[batch.reassign_tasks[key]]
            if owner != row.get("OwnerId"):
                updates[str(row["Id"])] = {"OwnerId": owner}
    return updates, completed

"""The sandbox org's records: validated writes, Salesforce ids and audit fields, in SQLite.

Records live in memory for speed and are written through to SQLite at the end of each
transaction, so a sandbox restarted on the same file keeps its org. One re-entrant lock
makes every operation atomic; `transaction()` nests, and an error inside undoes exactly
the writes of its own level (which is how collections implement ``allOrNone``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.common import open_store_db
from sandbox.salesforce_errors import MultipleMatches, SfError
from sandbox.salesforce_lines import after_write, before_write
from sandbox.salesforce_schema import OBJECTS, SYSTEM_ONLY, ObjectDef
from sandbox.salesforce_seed import MANAGERS, seed_records
from sandbox.salesforce_values import BASE62, ID_RE, checksum_id, coerce, normalize_id, sf_datetime

Record = dict[str, Any]
#: Master-detail children that go to the recycle bin with their parent.
CASCADE: dict[str, tuple[tuple[str, str], ...]] = {
    "Opportunity": (("OpportunityLineItem", "OpportunityId"),),
}


class Store:
    """The org's records, keyed by 18-character id, with validation and audit fields."""

    def __init__(self, path: Path | None) -> None:
        self._db = open_store_db(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, object TEXT, data TEXT)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.lock = threading.RLock()
        self._records: dict[str, Record] = {}
        self._by_object: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        self._journal: list[tuple[str, Record | None]] | None = None
        for rid, obj, data in self._db.execute("SELECT id, object, data FROM records"):
            self._put(rid, obj, json.loads(data))
        self._counter = int(self.meta("id_counter") or 0)
        if not self._records:
            self._seed()

    # -- metadata (counters, apps, credentials) ----------------------------------------
    def meta(self, key: str) -> str | None:
        with self.lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._db.commit()

    # -- reads ---------------------------------------------------------------------------
    def get(self, obj: str, record_id: str) -> Record:
        """A live record; one in the recycle bin is 404 ENTITY_IS_DELETED."""
        rid = normalize_id(record_id) if ID_RE.match(record_id) else record_id
        with self.lock:
            record = self._by_object[obj].get(rid)
            if record is None:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            if record.get("IsDeleted"):
                raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
            return public(record)

    def find(self, obj: str, field: str, value: object) -> list[Record]:
        with self.lock:
            return [public(r) for r in self.records(obj) if r.get(field) == value]

    def records(self, obj: str, *, include_deleted: bool = False) -> list[Record]:
        """The object's records, without the recycle bin unless asked."""
        with self.lock:
            rows = self._by_object[obj].values()
            return [r for r in rows if include_deleted or not r.get("IsDeleted")]

    def raw(self, record_id: str) -> tuple[str, Record] | None:
        """(object, record) for a 15- or 18-character id, deleted or not."""
        if not ID_RE.match(record_id):
            return None
        record = self._records.get(normalize_id(record_id))
        return None if record is None else (str(record["attributes_type"]), record)

    def _object_of_live(self, record_id: str) -> str | None:
        """The object of a record outside the recycle bin (for reference checks)."""
        found = self.raw(record_id)
        if found is not None and found[1].get("IsDeleted"):
            raise SfError(400, "ENTITY_IS_DELETED", "entity is deleted")
        return None if found is None else found[0]

    def object_of(self, record_id: str) -> str | None:
        found = self.raw(record_id)
        return None if found is None else found[0]

    # -- writes --------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together; an exception undoes this level's writes."""
        with self.lock:
            outermost = self._journal is None
            if outermost:
                self._journal = []
            journal = self._journal
            assert journal is not None
            mark = len(journal)
            try:
                yield
            except BaseException:
                for rid, old in reversed(journal[mark:]):
                    self._restore(rid, old)
                del journal[mark:]
                raise
            finally:
                if outermost:
                    self._persist({rid for rid, _ in journal})
                    self._journal = None

    def create(self, obj: str, data: Record, user_id: str) -> str:
        odef = OBJECTS[obj]
        with self.transaction():
            values = self._validate(odef, data, creating=True)
            self._counter += 1
            rid = checksum_id(f"{odef.prefix}Hd{_base62(self._counter, 10)}")
            stamp = sf_datetime(datetime.now(UTC).replace(microsecond=0))
            record: Record = {f.name: None for f in odef.fields}
            record.update({f.name: False for f in odef.fields if f.type == "boolean"})
            record.update(self._defaults(odef, user_id))
            record.update(values)
            record.update({"Id": rid, "CreatedDate": stamp, "CreatedById": user_id})
            self._stamp(record, user_id, stamp)
            before_write(self, obj, record, values, creating=True, user_id=user_id)
            self._check_unique(odef, record)
            self._write(rid, obj, record)
            after_write(self, obj, record, user_id)
            return rid

    def update(self, obj: str, record_id: str, data: Record, user_id: str) -> None:
        odef = OBJECTS[obj]
        with self.transaction():
            record = self.get(obj, record_id)
            values = self._validate(odef, data, creating=False)
            record.update(values)
            self._stamp(record, user_id, sf_datetime(datetime.now(UTC).replace(microsecond=0)))
            before_write(self, obj, record, values, creating=False, user_id=user_id)
            self._check_unique(odef, record)
            self._write(record["Id"], obj, record)
            after_write(self, obj, record, user_id)

    def set_fields(self, obj: str, record_id: str, values: Record, user_id: str) -> None:
        """Write values the org derives itself (rollups), without API validation."""
        with self.transaction():
            record = self.get(obj, record_id)
            record.update(values)
            self._stamp(record, user_id, sf_datetime(datetime.now(UTC).replace(microsecond=0)))
            self._write(record["Id"], obj, record)

    def upsert(
        self, obj: str, field: str, value: str, data: Record, user_id: str
    ) -> tuple[str, bool]:
        """Insert or update by external id; returns (id, created)."""
        fdef = OBJECTS[obj].get(field)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise SfError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        with self.transaction():
            matches = [r for r in self.records(obj) if r.get(fdef.name) == value]
            if len(matches) > 1:
                raise MultipleMatches(obj, [str(r["Id"]) for r in matches])
            if data.get(fdef.name, value) != value:
                raise SfError(400, "INVALID_FIELD", f"{fdef.name} in the body differs from the URL")
            if matches:
                self.update(obj, matches[0]["Id"], data, user_id)
                return str(matches[0]["Id"]), False
            return self.create(obj, {**data, fdef.name: value}, user_id), True

    def delete(self, obj: str, record_id: str, user_id: str = "") -> None:
        """Move a record to the recycle bin (``IsDeleted``), with its master-detail children."""
        with self.transaction():
            record = self.get(obj, record_id)
            stamp = sf_datetime(datetime.now(UTC).replace(microsecond=0))
            self._stamp(record, user_id or record["LastModifiedById"], stamp)
            record.update(IsDeleted=True, DeletedDate=stamp)
            self._write(record["Id"], obj, record)
            for child, field in CASCADE.get(obj, ()):
                for row in self.find(child, field, record["Id"]):
                    self.delete(child, row["Id"], user_id)
            after_write(self, obj, record, user_id or record["LastModifiedById"])

    def deleted(self, obj: str) -> list[Record]:
        """The recycle bin of `obj`: records with ``IsDeleted`` and their ``DeletedDate``."""
        with self.lock:
            return [public(r) for r in self._by_object[obj].values() if r.get("IsDeleted")]

    # -- internals -----------------------------------------------------------------------
    def _validate(self, odef: ObjectDef, data: Record, *, creating: bool) -> Record:
        values: Record = {}
        for key, raw in data.items():
            if key == "attributes":
                continue
            fdef = odef.get(key)
            if fdef is None:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {odef.name}",
                    [key],
                )
            if not (fdef.createable if creating else fdef.updateable):
                verb = "create" if creating else "update"
                raise SfError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to {verb} fields: [{fdef.name}]",
                    [fdef.name],
                )
            values[fdef.name] = coerce(fdef, raw, self._object_of_live)
        for fdef in odef.fields:
            missing = values.get(fdef.name) in (None, "") if fdef.name in values else creating
            if fdef.required and missing:
                raise SfError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{fdef.name}]",
                    [fdef.name],
                )
        discount = values.get("Discount_Percent__c")
        if odef.name == "Opportunity" and discount is not None and not 0 <= discount <= 100:
            raise SfError(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Discount must be between 0 and 100.",
                ["Discount_Percent__c"],
            )
        return values

    def _defaults(self, odef: ObjectDef, user_id: str) -> Record:
        out: Record = {"OwnerId": user_id} if odef.get("OwnerId") else {}
        if odef.name == "Task":
            out |= {"Status": "Not Started", "Priority": "Normal"}
        return out

    def _check_unique(self, odef: ObjectDef, record: Record) -> None:
        for fdef in odef.fields:
            value = record.get(fdef.name)
            if not fdef.unique or value is None:
                continue
            for other in self.records(odef.name):
                if other["Id"] != record["Id"] and other.get(fdef.name) == value:
                    raise SfError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {fdef.name} duplicates value"
                        f" on record with id: {other['Id']}",
                        [fdef.name],
                    )

    @staticmethod
    def _stamp(record: Record, user_id: str, stamp: str) -> None:
        record.update(LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=user_id)

    def _remember(self, rid: str) -> None:
        if self._journal is not None:
            old = self._records.get(rid)
            self._journal.append((rid, None if old is None else dict(old)))

    def _write(self, rid: str, obj: str, record: Record) -> None:
        self._remember(rid)
        self._put(rid, obj, record)

    def _put(self, rid: str, obj: str, record: Record) -> None:
        record = {**record, "attributes_type": obj}
        self._records[rid] = record
        self._by_object[obj][rid] = record

    def _restore(self, rid: str, old: Record | None) -> None:
        current = self._records.pop(rid, None)
        if current is not None:
            self._by_object[current["attributes_type"]].pop(rid, None)
        if old is not None:
            self._put(rid, old["attributes_type"], old)

    def _persist(self, ids: set[str]) -> None:
        for rid in ids:
            record = self._records.get(rid)
            if record is None:
                self._db.execute("DELETE FROM records WHERE id = ?", (rid,))
            else:
                data = {k: v for k, v in record.items() if k != "attributes_type"}
                self._db.execute(
                    "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                    (rid, record["attributes_type"], json.dumps(data)),
                )
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('id_counter', ?)", (str(self._counter),)
        )
        self._db.commit()

    def _seed(self) -> None:
        refs: dict[str, str] = {}
        bootstrap = checksum_id(f"005Hd{_base62(self._counter + 1, 10)}")
        with self.transaction():
            for obj, local, fields in seed_records():
                values = {
                    k: refs[v[1:]] if isinstance(v, str) and v.startswith("@") else v
                    for k, v in fields.items()
                }
                author = refs.get("sam.rep" if obj != "User" else "handoff.integration")
                system = {k: values.pop(k) for k in SYSTEM_ONLY if k in values}
                refs[local] = self.create(obj, values, author or bootstrap)
                if system:
                    self._records[refs[local]].update(system)
            for person, manager in MANAGERS.items():  # the org chart, once users exist
                self._records[refs[person]]["ManagerId"] = refs[manager]


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n, 62)
        out = BASE62[rem] + out
    return out.rjust(width, "0")


def public(record: Record) -> Record:
    """A stored record without the sandbox's bookkeeping keys."""
    return {k: v for k, v in record.items() if k != "attributes_type"}

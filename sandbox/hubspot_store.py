"""The HubSpot sandbox's records and associations, validated and kept in SQLite.

One re-entrant lock makes every operation atomic (uvicorn may run handlers on several
threads). Property values are validated against the live definitions (`PropertyRegistry`:
the built-in ones plus those made through the Properties API) and stored as HubSpot
returns them (`hubspot_values`). Each change is kept in a history table, for
``propertiesWithHistory``, and reported to `listeners` (the webhooks dispatcher).
Associations are stored in both directions, each with its own type id
(`AssociationTypes`); invented type ids are refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.common import open_store_db
from sandbox.hubspot_assoc_types import AssociationTypes, Spec
from sandbox.hubspot_errors import HsError
from sandbox.hubspot_http import iso_ms, not_found, object_type
from sandbox.hubspot_line_items import derived
from sandbox.hubspot_owners import OWNER_IDS
from sandbox.hubspot_properties import NAME as PROPERTY_NAME
from sandbox.hubspot_properties import PropertyRegistry
from sandbox.hubspot_schema import (
    REQUIRED_ON_CREATE,
    SEED,
    SEED_ASSOCIATIONS,
    SINGULAR,
    SYSTEM_PROPERTIES,
    PropertyDef,
)
from sandbox.hubspot_values import bad_value, normalise

Record = dict[str, Any]
__all__ = ["HsError", "Record", "Store", "iso_ms", "not_found", "object_type", "public"]
FIRST_ID = 10_001


class Store:
    """The portal's objects (by type and numeric id) and their associations."""

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self._db = open_store_db(path)
        with self.lock, self._db:
            self._db.executescript(
                """CREATE TABLE IF NOT EXISTS objects (type TEXT, id TEXT, created TEXT,
                       updated TEXT, archived INTEGER DEFAULT 0, archived_at TEXT, props TEXT,
                       PRIMARY KEY (type, id));
                   CREATE TABLE IF NOT EXISTS associations (from_type TEXT, from_id TEXT,
                       to_type TEXT, to_id TEXT, category TEXT, type_id INTEGER,
                       PRIMARY KEY (from_type, from_id, to_type, to_id, category, type_id));
                   CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
                   CREATE TABLE IF NOT EXISTS history (type TEXT, id TEXT, name TEXT,
                       value TEXT, at TEXT, source TEXT);
                   CREATE INDEX IF NOT EXISTS history_record ON history (type, id, name);"""
            )
            fresh = self._db.execute("SELECT value FROM meta WHERE key='seeded'").fetchone() is None
        self._last = datetime.now(UTC)
        self.registry = PropertyRegistry(self._db, self.lock)
        #: Called after each API write: (type, id, creation|propertyChange|deletion,
        #: properties before, properties after). The webhooks dispatcher listens here.
        self.listeners: list[Callable[[str, str, str, Record, Record], None]] = []
        self.assoc_types = AssociationTypes(self._db, self.lock)
        self.seed(missing_only=not fresh)

    # -- seeding -----------------------------------------------------------------------
    def seed(self, *, missing_only: bool = False) -> None:
        """Load the demo portal: companies, contacts and deals with owners and discounts,
        and products. On a store seeded by an older version (`missing_only`), only the
        seed records it lacks are added (and their associations)."""
        with self.lock, self._db:
            added = set()
            for ot, rid, props in SEED:
                if missing_only and self._exists(ot, rid):
                    continue
                self._insert(ot, rid, self.clean(ot, props, creating=True))
                added.add((ot, rid))
            for from_ot, from_id, to_ot, to_id in SEED_ASSOCIATIONS:
                if (from_ot, from_id) in added or (to_ot, to_id) in added:
                    self.associate_default(from_ot, from_id, to_ot, to_id)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seeded', '1')")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_id', ?)", (str(FIRST_ID),))

    def _exists(self, ot: str, rid: str) -> bool:
        row = self._db.execute("SELECT 1 FROM objects WHERE type=? AND id=?", (ot, rid))
        return row.fetchone() is not None

    # -- validation ----------------------------------------------------------------------
    def clean(
        self, ot: str, props: object, *, creating: bool, rid: str = ""
    ) -> dict[str, str | None]:
        """Validated, normalised properties; raises VALIDATION_ERROR or CONFLICT."""
        if not isinstance(props, dict):
            raise HsError(400, "VALIDATION_ERROR", "properties must be an object")
        defs, out, errors = self.props(ot), {}, []
        for name, raw in props.items():
            pdef = defs.get(name)
            if pdef is None:
                errors.append(
                    bad_value(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if pdef.read_only or name == "hs_object_id":
                errors.append(bad_value(name, "READ_ONLY_VALUE", f'Property "{name}" is read-only'))
                continue
            value, error = normalise(pdef, raw)
            if error is None and name == "hubspot_owner_id" and value not in (None, *OWNER_IDS):
                error = bad_value(name, "INVALID_OWNER_ID", f'"{value}" is not a valid owner id')
            if error:
                errors.append(error)
            out[name] = value
        for name in REQUIRED_ON_CREATE.get(ot, ()) if creating else ():
            if out.get(name) is None:
                errors.append(bad_value(name, "REQUIRED_PROPERTY", f"{name} is required"))
        if errors:
            detail = "; ".join(e["message"] for e in errors)
            raise HsError(
                400, "VALIDATION_ERROR", f"Property values were not valid: {detail}", errors
            )
        for name, value in out.items():
            if defs[name].unique and value is not None:
                other = self.find_unique(ot, name, value)
                if other is not None and other["id"] != rid:
                    raise HsError(
                        409,
                        "CONFLICT",
                        f"A {SINGULAR[ot].lower()} with {name}={value} already exists: "
                        f"{other['id']}",
                        context={"id": [other["id"]]},
                    )
        return out

    def props(self, ot: str) -> dict[str, PropertyDef]:
        """The live property definitions of `ot`, by name."""
        return self.registry.defs(ot)

    # -- records ---------------------------------------------------------------------------
    def _tick(self) -> str:
        now = max(datetime.now(UTC), self._last)
        self._last = now
        return iso_ms(now)

    def _insert(self, ot: str, rid: str, props: dict[str, str | None]) -> Record:
        now = self._tick()
        stored = {k: v for k, v in props.items() if v is not None}
        stored |= {"hs_object_id": rid, "createdate": now, "hs_lastmodifieddate": now}
        stored = derived(ot, stored, self._product)
        self._db.execute(
            "INSERT INTO objects (type, id, created, updated, props) VALUES (?, ?, ?, ?, ?)",
            (ot, rid, now, now, json.dumps(stored)),
        )
        self._record_history(ot, rid, {}, stored, now)
        self._notify(ot, rid, "creation", {}, stored)
        return self.get(ot, rid)

    def _notify(self, ot: str, rid: str, kind: str, before: Record, after: Record) -> None:
        for listener in self.listeners:
            listener(ot, rid, kind, before, after)

    def _product(self, product_id: str) -> dict[str, str | None]:
        try:
            return dict(self.get("products", product_id)["properties"])
        except HsError:
            raise HsError(
                400,
                "VALIDATION_ERROR",
                f"Property values were not valid: product {product_id} does not exist",
                [bad_value("hs_product_id", "INVALID_PRODUCT", f"no product {product_id}")],
            ) from None

    def _record_history(
        self, ot: str, rid: str, before: dict[str, Any], after: dict[str, Any], at: str
    ) -> None:
        rows = [
            (ot, rid, name, "" if value is None else str(value), at, "API")
            for name, value in after.items()
            if before.get(name) != value and name != "hs_lastmodifieddate"
        ]
        rows += [
            (ot, rid, name, "", at, "API") for name in before if name not in after and before[name]
        ]
        self._db.executemany("INSERT INTO history VALUES (?,?,?,?,?,?)", rows)

    def history(self, ot: str, rid: str, names: list[str]) -> dict[str, list[dict[str, str]]]:
        """``propertiesWithHistory``: each property's values, newest first."""
        with self.lock:
            out: dict[str, list[dict[str, str]]] = {}
            for name in names:
                rows = self._db.execute(
                    "SELECT value, at, source FROM history WHERE type=? AND id=? AND name=? "
                    "ORDER BY rowid DESC",
                    (ot, rid, name),
                ).fetchall()
                out[name] = [
                    {"value": v, "timestamp": at, "sourceType": src} for v, at, src in rows
                ]
            return out

    def _next_id(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key='next_id'").fetchone()
        value = int(row[0]) if row else FIRST_ID
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)", (str(value + 1),))
        return str(value)

    def create(self, ot: str, props: object) -> Record:
        with self.lock, self._db:
            return self._insert(ot, self._next_id(), self.clean(ot, props, creating=True))

    def _row(self, ot: str, rid: str, archived: bool) -> Record | None:
        row = self._db.execute(
            "SELECT id, created, updated, archived, archived_at, props FROM objects "
            "WHERE type=? AND id=?",
            (ot, rid),
        ).fetchone()
        if row is None or bool(row[3]) != archived:
            return None
        record: Record = {
            "id": row[0],
            "createdAt": row[1],
            "updatedAt": row[2],
            "archived": bool(row[3]),
            "properties": json.loads(row[5]),
        }
        if row[4]:
            record["archivedAt"] = row[4]
        return record

    def get(
        self, ot: str, rid: str, *, id_property: str | None = None, archived: bool = False
    ) -> Record:
        with self.lock:
            if id_property and id_property != "hs_object_id":
                pdef = self.props(ot).get(id_property)
                if pdef is None or not pdef.unique:
                    raise HsError(
                        400, "VALIDATION_ERROR", f"{id_property} is not a unique property of {ot}"
                    )
                found = self.find_unique(ot, id_property, rid, archived=archived)
                if found is None:
                    raise not_found(ot, rid)
                return found
            record = self._row(ot, rid, archived)
            if record is None:
                raise not_found(ot, rid)
            return record

    def find_unique(
        self, ot: str, name: str, value: str, *, archived: bool = False
    ) -> Record | None:
        with self.lock:
            if not isinstance(value, str) or not PROPERTY_NAME.fullmatch(name):
                return None  # stored values are strings; property names are [a-z0-9_]
            # The first match by id, from an index on the property (made at its first
            # look-up), not a decode of every record's JSON in Python: that scan was most
            # of the sandbox's time in `handoff bench`, and grew with every record.
            # (Asked for each time: a rollback of the look-up's transaction undoes it.)
            column = f"json_extract(props, '$.{name}')"
            self._db.execute(
                f'CREATE INDEX IF NOT EXISTS "unique_{name}" ON objects (type, {column})'
            )
            query = (  # `name` matched PROPERTY_NAME above: letters, digits, underscores
                f"SELECT id FROM objects WHERE type=? AND {column}=? AND archived=? "  # noqa: S608
                f"AND json_type(props, '$.{name}')='text' ORDER BY CAST(id AS INTEGER) LIMIT 1"
            )
            row = self._db.execute(query, (ot, value, int(archived))).fetchone()
            return None if row is None else self.get(ot, row[0], archived=archived)

    def rows(self, ot: str, *, archived: bool = False) -> list[tuple[str, dict[str, str | None]]]:
        with self.lock:
            cur = self._db.execute(
                "SELECT id, props FROM objects WHERE type=? AND archived=? "
                "ORDER BY CAST(id AS INTEGER)",
                (ot, int(archived)),
            )
            return [(r[0], json.loads(r[1])) for r in cur.fetchall()]

    def update(self, ot: str, rid: str, props: object, *, id_property: str | None = None) -> Record:
        with self.lock, self._db:
            record = self.get(ot, rid, id_property=id_property)
            clean = self.clean(ot, props, creating=False, rid=record["id"])
            merged = {**record["properties"], **clean}
            merged = {k: v for k, v in merged.items() if v is not None}
            now = self._tick()
            merged["hs_lastmodifieddate"] = now
            merged = derived(ot, merged, self._product, changed=set(clean))
            self._db.execute(
                "UPDATE objects SET updated=?, props=? WHERE type=? AND id=?",
                (now, json.dumps(merged), ot, record["id"]),
            )
            self._record_history(ot, record["id"], record["properties"], merged, now)
            self._notify(ot, record["id"], "propertyChange", record["properties"], merged)
            return self.get(ot, record["id"])

    def archive(self, ot: str, rid: str) -> bool:
        with self.lock, self._db:
            cur = self._db.execute(
                "UPDATE objects SET archived=1, archived_at=? WHERE type=? AND id=? AND archived=0",
                (self._tick(), ot, rid),
            )
            if cur.rowcount > 0:
                self._notify(ot, rid, "deletion", {}, {})
            return cur.rowcount > 0

    # -- associations ----------------------------------------------------------------------
    def associate(
        self, from_ot: str, from_id: str, to_ot: str, to_id: str, specs: list[Spec]
    ) -> None:
        """Store both directions, each with its own type; unknown types are a 400."""
        with self.lock, self._db:
            self.assoc_types.check(from_ot, to_ot, specs)
            self.get(from_ot, from_id)
            self.get(to_ot, to_id)
            for spec in specs:
                back = self.assoc_types.inverse(from_ot, to_ot, spec)
                for row in (
                    (from_ot, from_id, to_ot, to_id, *spec),
                    (to_ot, to_id, from_ot, from_id, *back),
                ):
                    self._db.execute("INSERT OR IGNORE INTO associations VALUES (?,?,?,?,?,?)", row)

    def associate_default(self, from_ot: str, from_id: str, to_ot: str, to_id: str) -> int:
        type_id = self.assoc_types.default(from_ot, to_ot)
        self.associate(from_ot, from_id, to_ot, to_id, [("HUBSPOT_DEFINED", type_id)])
        return type_id

    def unassociate(
        self, from_ot: str, from_id: str, to_ot: str, to_id: str, specs: list[Spec] | None = None
    ) -> int:
        """Remove the association (only `specs`, or every type), both directions."""
        with self.lock, self._db:
            if specs is None:
                specs = [(c, t) for _, found in self._pairs(from_ot, from_id, to_ot, to_id)
                         for c, t in found]  # fmt: skip
            removed = 0
            for spec in specs:
                back = self.assoc_types.inverse(from_ot, to_ot, spec)
                for row in (
                    (from_ot, from_id, to_ot, to_id, *spec),
                    (to_ot, to_id, from_ot, from_id, *back),
                ):
                    removed += self._db.execute(
                        "DELETE FROM associations WHERE from_type=? AND from_id=? AND to_type=? "
                        "AND to_id=? AND category=? AND type_id=?",
                        row,
                    ).rowcount
            return removed

    def _pairs(
        self, from_ot: str, from_id: str, to_ot: str, to_id: str
    ) -> list[tuple[str, list[Spec]]]:
        return [(t, s) for t, s in self.associations(from_ot, from_id, to_ot) if t == to_id]

    def drop_type(self, from_ot: str, to_ot: str, spec: Spec, back: Spec) -> None:
        """Forget every association of a deleted label type (both directions)."""
        with self.lock, self._db:
            for f, t, (category, type_id) in ((from_ot, to_ot, spec), (to_ot, from_ot, back)):
                self._db.execute(
                    "DELETE FROM associations WHERE from_type=? AND to_type=? AND category=? "
                    "AND type_id=?",
                    (f, t, category, type_id),
                )

    def associations(
        self, ot: str, rid: str, to_ot: str
    ) -> list[tuple[str, list[tuple[str, int]]]]:
        """(to id, [(category, typeId)]) for every live associated record, by id."""
        with self.lock:
            cur = self._db.execute(
                "SELECT a.to_id, a.category, a.type_id FROM associations a JOIN objects o "
                "ON o.type=a.to_type AND o.id=a.to_id AND o.archived=0 "
                "WHERE a.from_type=? AND a.from_id=? AND a.to_type=? "
                "ORDER BY CAST(a.to_id AS INTEGER), a.type_id",
                (ot, rid, to_ot),
            )
            grouped: dict[str, list[tuple[str, int]]] = {}
            for to_id, category, type_id in cur.fetchall():
                grouped.setdefault(to_id, []).append((category, int(type_id)))
            return list(grouped.items())


def public(
    record: Record,
    wanted: list[str] | None,
    known: dict[str, PropertyDef],
    defaults: tuple[str, ...],
) -> Record:
    """A record as the API returns it: the asked-for properties (null when unset)."""
    names = list(wanted) if wanted else list(defaults)
    names += [n for n in SYSTEM_PROPERTIES if n not in names]
    props = record["properties"]
    shown = {n: props.get(n) for n in names if n in known or n in props}
    return {**record, "properties": shown}

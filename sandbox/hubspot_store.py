"""The HubSpot sandbox's records and associations, validated and kept in SQLite.

One re-entrant lock makes every operation atomic (uvicorn may run handlers on several
threads). Property values are validated against `hubspot_schema.PROPERTIES` and stored
as HubSpot returns them: text, with numbers, booleans, dates and datetimes normalised.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sandbox.hubspot_errors import HsError
from sandbox.hubspot_http import iso_ms
from sandbox.hubspot_schema import (
    DEFAULT_ASSOCIATIONS,
    OBJECT_TYPE_IDS,
    PROPERTY_INDEX,
    SEED,
    SEED_ASSOCIATIONS,
    SINGULAR,
    SYSTEM_PROPERTIES,
    TYPE_NAMES,
    PropertyDef,
)
from sandbox.hubspot_search import to_epoch_ms

Record = dict[str, Any]
__all__ = ["HsError", "Record", "Store", "iso_ms", "not_found", "object_type", "public"]
FIRST_ID = 10_001


def not_found(ot: str, rid: str) -> HsError:
    return HsError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [rid], "type": [SINGULAR.get(ot, ot.upper())]},
    )


def object_type(name: str) -> str:
    """``deals``, ``deal`` or ``0-3`` → ``deals``; unknown types are a 400."""
    if name in OBJECT_TYPE_IDS:
        return name
    if name in TYPE_NAMES:
        return TYPE_NAMES[name]
    if f"{name}s" in OBJECT_TYPE_IDS:
        return f"{name}s"
    raise HsError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")


def _bad(name: str, code: str, message: str) -> dict[str, Any]:
    return {"message": message, "code": code, "context": {"propertyName": [name]}}


def _normalise(pdef: PropertyDef, raw: object) -> tuple[str | None, dict[str, Any] | None]:
    """(stored text or None to clear, error detail or None)."""
    if raw is None or raw == "":
        return None, None
    text = str(raw).strip()
    name = pdef.name
    try:
        if pdef.type == "number":
            number = float(text)
            return (str(int(number)) if number.is_integer() else repr(number)), None
        if pdef.type == "bool":
            if text.lower() not in ("true", "false"):
                return None, _bad(name, "INVALID_BOOLEAN", f'"{text}" is not a valid boolean')
            return text.lower(), None
        if pdef.type == "datetime":
            ms = to_epoch_ms(text)
            return iso_ms(datetime.fromtimestamp(ms / 1000, UTC)), None
        if pdef.type == "date":
            if re.fullmatch(r"\d+", text):
                return datetime.fromtimestamp(int(text) / 1000, UTC).date().isoformat(), None
            return date.fromisoformat(text[:10]).isoformat(), None
    except (ValueError, OverflowError):
        return None, _bad(
            name, f"INVALID_{pdef.type.upper()}", f'"{text}" is not a valid {pdef.type}'
        )
    if pdef.type == "enumeration" and text not in {v for v, _ in pdef.options}:
        allowed = ", ".join(v for v, _ in pdef.options)
        return None, _bad(
            name, "INVALID_OPTION", f'"{text}" was not one of the allowed options: [{allowed}]'
        )
    return text, None


class Store:
    """The portal's objects (by type and numeric id) and their associations."""

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.RLock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        with self.lock, self._db:
            self._db.executescript(
                """CREATE TABLE IF NOT EXISTS objects (type TEXT, id TEXT, created TEXT,
                       updated TEXT, archived INTEGER DEFAULT 0, archived_at TEXT, props TEXT,
                       PRIMARY KEY (type, id));
                   CREATE TABLE IF NOT EXISTS associations (from_type TEXT, from_id TEXT,
                       to_type TEXT, to_id TEXT, category TEXT, type_id INTEGER,
                       PRIMARY KEY (from_type, from_id, to_type, to_id, category, type_id));
                   CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"""
            )
            fresh = self._db.execute("SELECT value FROM meta WHERE key='seeded'").fetchone() is None
        self._last = datetime.now(UTC)
        if fresh:
            self.seed()

    # -- seeding -----------------------------------------------------------------------
    def seed(self) -> None:
        """Load the demo portal: companies, contacts and deals with owners and discounts."""
        with self.lock, self._db:
            for ot, rid, props in SEED:
                self._insert(ot, rid, self.clean(ot, props, creating=True))
            for from_ot, from_id, to_ot, to_id in SEED_ASSOCIATIONS:
                self.associate_default(from_ot, from_id, to_ot, to_id)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seeded', '1')")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_id', ?)", (str(FIRST_ID),))

    # -- validation ----------------------------------------------------------------------
    def clean(
        self, ot: str, props: object, *, creating: bool, rid: str = ""
    ) -> dict[str, str | None]:
        """Validated, normalised properties; raises VALIDATION_ERROR or CONFLICT."""
        if not isinstance(props, dict):
            raise HsError(400, "VALIDATION_ERROR", "properties must be an object")
        defs, out, errors = PROPERTY_INDEX[ot], {}, []
        for name, raw in props.items():
            pdef = defs.get(name)
            if pdef is None:
                errors.append(
                    _bad(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if pdef.read_only or name == "hs_object_id":
                errors.append(_bad(name, "READ_ONLY_VALUE", f'Property "{name}" is read-only'))
                continue
            value, error = _normalise(pdef, raw)
            if error:
                errors.append(error)
            out[name] = value
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

    # -- records ---------------------------------------------------------------------------
    def _tick(self) -> str:
        now = max(datetime.now(UTC), self._last)
        self._last = now
        return iso_ms(now)

    def _insert(self, ot: str, rid: str, props: dict[str, str | None]) -> Record:
        now = self._tick()
        stored = {k: v for k, v in props.items() if v is not None}
        stored |= {"hs_object_id": rid, "createdate": now, "hs_lastmodifieddate": now}
        self._db.execute(
            "INSERT INTO objects (type, id, created, updated, props) VALUES (?, ?, ?, ?, ?)",
            (ot, rid, now, now, json.dumps(stored)),
        )
        return self.get(ot, rid)

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
                pdef = PROPERTY_INDEX[ot].get(id_property)
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
            for rid, props in self.rows(ot, archived=archived):
                if props.get(name) == value:
                    return self.get(ot, rid, archived=archived)
            return None

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
            self._db.execute(
                "UPDATE objects SET updated=?, props=? WHERE type=? AND id=?",
                (now, json.dumps(merged), ot, record["id"]),
            )
            return self.get(ot, record["id"])

    def archive(self, ot: str, rid: str) -> bool:
        with self.lock, self._db:
            cur = self._db.execute(
                "UPDATE objects SET archived=1, archived_at=? WHERE type=? AND id=? AND archived=0",
                (self._tick(), ot, rid),
            )
            return cur.rowcount > 0

    # -- associations ----------------------------------------------------------------------
    def associate(
        self, from_ot: str, from_id: str, to_ot: str, to_id: str, specs: list[tuple[str, int]]
    ) -> None:
        """Store both directions; the reverse uses the reverse default type where known."""
        with self.lock, self._db:
            self.get(from_ot, from_id)
            self.get(to_ot, to_id)
            for category, type_id in specs:
                reverse = DEFAULT_ASSOCIATIONS.get((to_ot, from_ot), type_id)
                for row in (
                    (from_ot, from_id, to_ot, to_id, category, type_id),
                    (to_ot, to_id, from_ot, from_id, category, reverse),
                ):
                    self._db.execute("INSERT OR IGNORE INTO associations VALUES (?,?,?,?,?,?)", row)

    def associate_default(self, from_ot: str, from_id: str, to_ot: str, to_id: str) -> int:
        type_id = DEFAULT_ASSOCIATIONS.get((from_ot, to_ot))
        if type_id is None:
            raise HsError(
                400, "VALIDATION_ERROR", f"No default association type from {from_ot} to {to_ot}"
            )
        self.associate(from_ot, from_id, to_ot, to_id, [("HUBSPOT_DEFINED", type_id)])
        return type_id

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


def public(record: Record, wanted: list[str] | None, ot: str, defaults: tuple[str, ...]) -> Record:
    """A record as the API returns it: the asked-for properties (null when unset)."""
    names = list(wanted) if wanted else list(defaults)
    names += [n for n in SYSTEM_PROPERTIES if n not in names]
    props = record["properties"]
    known = PROPERTY_INDEX[ot]
    shown = {n: props.get(n) for n in names if n in known or n in props}
    return {**record, "properties": shown}

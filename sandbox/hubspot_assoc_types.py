"""Association types of the HubSpot sandbox: HubSpot's own and the portal's labels.

HUBSPOT_DEFINED types come from `hubspot_schema` (the default type of each pair of
object types, plus a few labelled ones such as the primary company of a deal).
USER_DEFINED types are labels created through ``/crm/v4/associations/{from}/{to}/labels``
and kept in SQLite (table ``assoc_labels``). Each label is a pair of type ids, one per
direction, so an association stored one way can be read the other way. A type id that
is neither, or that belongs to another pair of object types, is refused with 400.
"""

from __future__ import annotations

import sqlite3
import threading

from sandbox.hubspot_errors import HsError, validation
from sandbox.hubspot_schema import DEFAULT_ASSOCIATIONS, LABELLED_ASSOCIATIONS, OBJECT_TYPE_IDS

CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED")
FIRST_LABEL_TYPE_ID = 1_001
Spec = tuple[str, int]  # (category, typeId)


class AssociationTypes:
    """Which (category, typeId) pairs exist between two object types, and their labels."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db, self._lock = db, lock
        with lock, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS assoc_labels (from_type TEXT, to_type TEXT, "
                "type_id INTEGER, label TEXT, name TEXT, inverse_id INTEGER, "
                "PRIMARY KEY (from_type, to_type, type_id))"
            )

    # -- lookups ----------------------------------------------------------------------------
    def _builtin(self, from_ot: str, to_ot: str) -> dict[int, str | None]:
        found: dict[int, str | None] = {}
        if (from_ot, to_ot) in DEFAULT_ASSOCIATIONS:
            found[DEFAULT_ASSOCIATIONS[(from_ot, to_ot)]] = None
        found.update(LABELLED_ASSOCIATIONS.get((from_ot, to_ot), {}))
        return found

    def _labels(self, from_ot: str, to_ot: str) -> dict[int, tuple[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT type_id, label, inverse_id FROM assoc_labels "
                "WHERE from_type=? AND to_type=? ORDER BY type_id",
                (from_ot, to_ot),
            ).fetchall()
        return {int(t): (str(label), int(inv)) for t, label, inv in rows}

    def specs(self, from_ot: str, to_ot: str) -> list[tuple[str, int, str | None]]:
        """(category, typeId, label) of every type from `from_ot` to `to_ot`."""
        builtin = [
            ("HUBSPOT_DEFINED", t, label) for t, label in self._builtin(from_ot, to_ot).items()
        ]
        user = [
            ("USER_DEFINED", t, label) for t, (label, _) in self._labels(from_ot, to_ot).items()
        ]
        return builtin + user

    def label(self, from_ot: str, to_ot: str, spec: Spec) -> str | None:
        category, type_id = spec
        if category == "HUBSPOT_DEFINED":
            return self._builtin(from_ot, to_ot).get(type_id)
        found = self._labels(from_ot, to_ot).get(type_id)
        return found[0] if found else None

    def check(self, from_ot: str, to_ot: str, specs: list[Spec]) -> None:
        """Refuse, with HubSpot's 400, any type that does not exist between the two types."""
        known = {(c, t) for c, t, _ in self.specs(from_ot, to_ot)}
        for category, type_id in specs:
            if category not in CATEGORIES:
                raise validation(
                    f"associationCategory {category!r} is not one of {', '.join(CATEGORIES)}"
                )
            if (category, type_id) not in known:
                raise validation(
                    f"{category} association type {type_id} is not valid from "
                    f"{OBJECT_TYPE_IDS[from_ot]} to {OBJECT_TYPE_IDS[to_ot]}"
                )

    def inverse(self, from_ot: str, to_ot: str, spec: Spec) -> Spec:
        """The type the same association has when read from the other side."""
        category, type_id = spec
        if category != "HUBSPOT_DEFINED":
            found = self._labels(from_ot, to_ot).get(type_id)
            return (category, found[1] if found else type_id)
        label = self._builtin(from_ot, to_ot).get(type_id)
        for back_id, back_label in self._builtin(to_ot, from_ot).items():
            if back_label == label:
                return (category, back_id)
        return spec

    def default(self, from_ot: str, to_ot: str) -> int:
        type_id = DEFAULT_ASSOCIATIONS.get((from_ot, to_ot))
        if type_id is None:
            raise validation(f"No default association type from {from_ot} to {to_ot}")
        return type_id

    # -- labels -----------------------------------------------------------------------------
    def _next_ids(self) -> tuple[int, int]:
        row = self._db.execute("SELECT MAX(type_id) FROM assoc_labels").fetchone()
        first = max(FIRST_LABEL_TYPE_ID, int(row[0] or 0) + 1)
        return first, first + 1

    def create_label(
        self, from_ot: str, to_ot: str, label: str, name: str, inverse_label: str | None
    ) -> list[tuple[str, int, str | None]]:
        with self._lock, self._db:
            taken = {
                str(row[0])
                for row in self._db.execute(
                    "SELECT name FROM assoc_labels WHERE from_type=? AND to_type=?",
                    (from_ot, to_ot),
                ).fetchall()
            }
            if name in taken:
                raise HsError(
                    409, "OBJECT_ALREADY_EXISTS", f"An association label named {name!r} exists"
                )
            forward, backward = self._next_ids()
            back_label = inverse_label or label
            rows = [
                (from_ot, to_ot, forward, label, name, backward),
                (to_ot, from_ot, backward, back_label, f"{name}_inverse", forward),
            ]
            self._db.executemany("INSERT INTO assoc_labels VALUES (?,?,?,?,?,?)", rows)
        return [("USER_DEFINED", forward, label), ("USER_DEFINED", backward, back_label)]

    def update_label(
        self, from_ot: str, to_ot: str, type_id: int, label: str, inverse_label: str | None
    ) -> None:
        with self._lock, self._db:
            found = self._labels(from_ot, to_ot).get(type_id)
            if found is None:
                raise HsError(404, "OBJECT_NOT_FOUND", f"No association label {type_id}")
            self._db.execute(
                "UPDATE assoc_labels SET label=? WHERE from_type=? AND to_type=? AND type_id=?",
                (label, from_ot, to_ot, type_id),
            )
            if inverse_label:
                self._db.execute(
                    "UPDATE assoc_labels SET label=? WHERE from_type=? AND to_type=? AND type_id=?",
                    (inverse_label, to_ot, from_ot, found[1]),
                )

    def delete_label(self, from_ot: str, to_ot: str, type_id: int) -> Spec:
        """Remove a label (both directions); returns the inverse spec it had."""
        with self._lock, self._db:
            found = self._labels(from_ot, to_ot).get(type_id)
            if found is None:
                raise HsError(404, "OBJECT_NOT_FOUND", f"No association label {type_id}")
            self._db.execute(
                "DELETE FROM assoc_labels WHERE (from_type=? AND to_type=? AND type_id=?) "
                "OR (from_type=? AND to_type=? AND type_id=?)",
                (from_ot, to_ot, type_id, to_ot, from_ot, found[1]),
            )
        return ("USER_DEFINED", found[1])

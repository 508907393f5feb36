"""The HubSpot sandbox finds a record by a unique property through an index of its own,
with the answers the scan gave: the first live match, archived records apart, a 409 for
a second record with the same value; and its file is kept in WAL mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.hubspot_store import HsError, Store

NOTE = {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_note_body": "stage moved"}


def _indexes(store: Store) -> set[str]:
    rows = store._db.execute("SELECT name FROM sqlite_master WHERE type='index'").fetchall()
    return {name for (name,) in rows}


def test_a_unique_value_is_found_and_a_second_refused() -> None:
    store = Store(None)
    first = store.create("notes", {**NOTE, "handoff_key": "k-1"})
    store.create("notes", {**NOTE, "handoff_key": "k-2"})
    found = store.find_unique("notes", "handoff_key", "k-1")
    assert found is not None and found["id"] == first["id"]
    assert store.find_unique("notes", "handoff_key", "k-3") is None
    assert store.find_unique("tasks", "handoff_key", "k-1") is None  # another type's value
    with pytest.raises(HsError) as refused:
        store.create("notes", {**NOTE, "handoff_key": "k-1"})
    assert refused.value.status == 409 and first["id"] in str(refused.value)
    assert "unique_handoff_key" in _indexes(store)


def test_an_archived_record_is_found_only_among_the_archived() -> None:
    store = Store(None)
    old = store.create("notes", {**NOTE, "handoff_key": "k-1"})
    assert store.archive("notes", old["id"])
    assert store.find_unique("notes", "handoff_key", "k-1") is None
    archived = store.find_unique("notes", "handoff_key", "k-1", archived=True)
    assert archived is not None and archived["id"] == old["id"]
    new = store.create("notes", {**NOTE, "handoff_key": "k-1"})
    live = store.find_unique("notes", "handoff_key", "k-1")
    assert live is not None and live["id"] == new["id"]


def test_an_index_undone_by_a_rollback_is_made_again() -> None:
    store = Store(None)
    made = store.create("notes", {**NOTE, "handoff_key": "k-1"})
    store._db.execute("DROP INDEX unique_handoff_key")  # as if its transaction rolled back
    with store._db:
        store._db.execute("UPDATE meta SET value=value WHERE key='next_id'")  # open one
        assert store.find_unique("notes", "handoff_key", "k-1") is not None
        store._db.rollback()
    assert "unique_handoff_key" not in _indexes(store)
    found = store.find_unique("notes", "handoff_key", "k-1")
    assert found is not None and found["id"] == made["id"]
    assert "unique_handoff_key" in _indexes(store)


def test_odd_names_and_values_match_nothing() -> None:
    store = Store(None)
    store.create("notes", {**NOTE, "handoff_key": "k-1"})
    assert store.find_unique("notes", "handoff_key') OR 1=1 --", "k-1") is None
    assert store.find_unique("notes", "handoff_key\n", "k-1") is None
    assert store.find_unique("notes", "handoff_key", 1) is None  # type: ignore[arg-type]


def test_a_file_store_is_kept_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "portal.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL

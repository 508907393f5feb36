"""The stage-event store and its figures, on SQLite and on PostgreSQL, checked against
figures worked out by hand (tests/support/stall_events.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

from support.stall_events import EVENTS, EVIL, HOUR, MAYA, NOW, T0, VICTOR, ev

from worker.stalls.figures import Filters, compute, to_csv
from worker.stalls.store import StallStore

WEEK1, WEEK2 = date(2026, 11, 2), date(2026, 11, 9)


def seeded(store: StallStore) -> StallStore:
    for e in EVENTS:
        store.record(e)
    return store


def test_an_event_recorded_twice_is_kept_once(store: StallStore) -> None:
    """A retried activity records its event once (same key)."""
    store.record(EVENTS[0])
    store.record(EVENTS[0])
    assert [e.key for e in store.read()] == [EVENTS[0].key]


def test_a_reminder_without_a_stage_takes_the_last_known_one(store: StallStore) -> None:
    """A reminder's write carries no stage: the store files it under the current one."""
    seeded(store)
    nudges = [e for e in store.read() if e.kind in ("reminder", "escalation")]
    assert [(e.kind, e.stage) for e in nudges] == [
        ("reminder", "deal_desk"),
        ("escalation", "deal_desk"),
    ]


def test_read_filters_by_type_and_time_and_keeps_utc(store: StallStore) -> None:
    """The query filters by handoff type and end of period; times come back in UTC."""
    seeded(store)
    renewal = store.read(handoff_type="renewal")
    assert {e.deal_id for e in renewal} == {"1005"}
    early = store.read(until=T0 + timedelta(hours=3))
    assert sorted(e.at for e in early) == [T0, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert all(e.at.utcoffset() == timedelta(0) for e in early)
    assert store.handoff_types() == ["lead-to-cash", "renewal"]


def test_time_in_stage_week_by_week(store: StallStore) -> None:
    """p50 and p90 of completed stays, by the week they started and overall."""
    fig = compute(seeded(store).read(handoff_type="lead-to-cash"), Filters(), NOW)
    rows = {(t.week, t.stage): (t.count, t.p50_s / HOUR, t.p90_s / HOUR) for t in fig.time_in_stage}
    assert rows == {
        (WEEK1, "qualify"): (3, 10, 20),
        (WEEK1, "deal_desk"): (1, 20, 20),
        (WEEK1, "close"): (1, 10, 10),
        (WEEK2, "qualify"): (1, 8, 8),
        (None, "qualify"): (4, 8, 20),
        (None, "deal_desk"): (1, 20, 20),
        (None, "close"): (1, 10, 10),
    }


def test_aging_waits_and_nudges_of_open_handoffs(store: StallStore) -> None:
    """Open handoffs by stage, by owner, team and what they wait on; nudges by stage."""
    fig = compute(seeded(store).read(handoff_type="lead-to-cash"), Filters(), NOW)
    assert (fig.handoffs, fig.open) == (4, 2)
    [aging] = fig.aging
    assert (aging.stage, aging.open, aging.p50_s / HOUR, aging.max_s / HOUR) == (
        "deal_desk",
        2,
        22,
        194,
    )
    assert aging.buckets == {"under 1d": 1, "1-3d": 0, "3-7d": 0, "over 7d": 1}
    waits = {(w.by, w.value): (w.open, w.oldest_s / HOUR) for w in fig.waits}
    assert waits == {
        ("owner", MAYA): (1, 194),
        ("owner", VICTOR): (1, 22),
        ("owner", EVIL): (1, 22),
        ("team", "sales"): (2, 194),
        ("waiting_on", "discount approval (sales manager)"): (2, 194),
    }
    assert [(n.stage, n.reminders, n.escalations) for n in fig.nudges] == [("deal_desk", 1, 1)]


def test_cycle_time_and_conversion(store: StallStore) -> None:
    """Lead → cash for finished handoffs; how many left each stage forward, or were lost."""
    fig = compute(seeded(store).read(handoff_type="lead-to-cash"), Filters(), NOW)
    assert [(c.week, c.count, c.p50_s / HOUR, c.p90_s / HOUR) for c in fig.cycle_time] == [
        (WEEK1, 1, 40, 40),
        (None, 1, 40, 40),
    ]
    assert [(c.stage, c.entered, c.advanced, c.lost, c.rate) for c in fig.conversion] == [
        ("qualify", 4, 4, 0, 1.0),
        ("deal_desk", 4, 1, 1, 0.25),
        ("close", 1, 1, 0, 1.0),
    ]


def test_filters_owner_team_period_and_type(store: StallStore) -> None:
    """Each filter narrows the figures as documented."""
    seeded(store)
    lead = store.read(handoff_type="lead-to-cash")
    victor = compute(lead, Filters(owner="Victor.VP@example.com"), NOW)
    # the escalation named victor on B, and D is his: two handoffs
    assert (victor.handoffs, victor.open) == (2, 2)
    week2 = compute(lead, Filters(since=T0 + timedelta(days=7)), NOW)
    assert [(t.week, t.stage, t.count) for t in week2.time_in_stage] == [
        (WEEK2, "qualify", 1),
        (None, "qualify", 1),
    ]
    assert week2.cycle_time == [] and week2.nudges == []
    ops = compute(lead, Filters(team="operations"), NOW)
    assert ops.time_in_stage == [] and ops.aging == []
    early = compute(lead, Filters(until=T0 + timedelta(hours=25)), NOW)
    # as of hour 25: A at deal_desk since 10, B since 6, C since 21 (lost only at 50)
    [aging] = early.aging
    assert (aging.open, aging.max_s / HOUR) == (3, 19)
    renewal = compute(store.read(handoff_type="renewal"), Filters(), NOW)
    assert [(a.stage, a.open, a.max_s / HOUR) for a in renewal.aging] == [("usage", 1, 195)]


def test_csv_export_has_every_figure_and_no_formula(store: StallStore) -> None:
    """The CSV holds each figure; text that a spreadsheet would run as a formula is quoted."""
    store.record(ev("2001", 0, "wait", "qualify", ("=HYPERLINK(1)",), "evidence"))
    fig = compute(store.read(), Filters(), NOW)
    text = to_csv(fig)
    assert text.splitlines()[0].startswith("figure,week,stage,by,value,count,p50_hours")
    assert "waits,,,owner,'=HYPERLINK(1),1,,,200.00" in text
    assert "aging,,qualify,,,1,200.00,,200.00" in text


def test_the_sqlite_store_commits_without_an_fsync_each(tmp_path: Path) -> None:
    """WAL, synced at checkpoints: a write-back's stage event adds no disk sync to the
    activity, and what it committed is in the file for the API and CLI to read."""
    store = StallStore(f"sqlite:///{tmp_path / 'stalls.sqlite3'}")
    try:
        store.record(EVENTS[0])
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        assert (mode, sync) == ("wal", 1)  # 1 = NORMAL (FULL, the default, is 2)
        with closing(sqlite3.connect(tmp_path / "stalls.sqlite3")) as db:
            assert db.execute("SELECT count(*) FROM handoff_stage_events").fetchone() == (1,)
    finally:
        store.close()

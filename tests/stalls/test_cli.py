"""`handoff stalls` in a terminal, on SQLite and PostgreSQL: tables, charts and CSV."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

from support.processes import HANDOFF
from support.stall_events import EVENTS, MAYA, ev

from worker.stalls.store import StallStore


def stalls_cli(store: StallStore, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    dsn = store.engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [HANDOFF, "stalls", *args],
        env={**clean, "COLUMNS": "80", "HANDOFF_STALLS_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def seed(store: StallStore) -> None:
    for e in EVENTS:
        store.record(e)


def test_the_cli_prints_every_figure(store: StallStore) -> None:
    """Tables and bars for the seeded lead-to-cash handoffs, as of the end of 2026-11-10."""
    seed(store)
    r = stalls_cli(store, "--type", "lead-to-cash", "--until", "2026-11-10")
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout
    assert "4 handoffs, 2 open, as of 2026-11-11 00:00 UTC" in text
    for title in (
        "Time in each stage, week by week",
        "Aging of open handoffs",
        "Where handoffs wait",
        "Reminders and escalations",
        "Cycle time, lead to cash",
        "Conversion by stage",
    ):
        assert title in text
    assert "25% of 4" in text  # deal desk: one of four moved on
    assert "210.0 h" in text  # B, waiting at the deal desk since hour 6


def test_the_cli_writes_csv_with_filters(store: StallStore) -> None:
    """--csv - writes the filtered figures; an owner filter keeps the handoffs naming them."""
    seed(store)
    r = stalls_cli(store, "--owner", MAYA, "--until", "2026-11-10", "--csv", "-")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    conversion = {row["stage"]: row for row in rows if row["figure"] == "conversion"}
    # Maya was named by A, B and C (not D, not the renewal)
    assert conversion["qualify"]["count"] == "3"
    assert conversion["deal_desk"]["advanced"] == "1"
    assert conversion["deal_desk"]["lost"] == "1"


def test_owner_names_are_text_not_markup(tmp_path: Path) -> None:
    """An owner named with rich markup or a terminal escape prints as plain text."""
    store = StallStore(f"sqlite:///{tmp_path / 'stalls.sqlite3'}")
    store.record(
        ev("3001", 0, "wait", "qualify", ("[red]boss[/red]\x1b[2J@x.example",), "evidence")
    )
    r = stalls_cli(store)
    assert r.returncode == 0, r.stderr
    assert "[red]boss[/red]?[2J@x.example" in r.stdout
    assert "\x1b[2J" not in r.stdout


def test_bad_filters_exit_2(tmp_path: Path) -> None:
    """A team that does not exist or a hostile type name is bad input (exit 2)."""
    store = StallStore(f"sqlite:///{tmp_path / 'stalls.sqlite3'}")
    for args in (("--team", "hackers"), ("--type", "x;drop table"), ("--since", "yesterday")):
        r = stalls_cli(store, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)

"""The store on both databases: a SQLite file, and a real PostgreSQL server per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.postgres import postgres_server

from worker.stalls.store import StallStore, events


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StallStore]:
    if request.param == "sqlite":
        dsn = f"sqlite:///{tmp_path / 'stalls.sqlite3'}"
    else:
        dsn = request.getfixturevalue("postgres_dsn")
    s = StallStore(dsn)
    try:
        yield s
    finally:
        events.drop(s.engine)
        s.close()

"""The stage-event store: SQLite under `handoff dev`, PostgreSQL in production.

One code path for both, through SQLAlchemy Core: the table, the idempotent insert and
the filtered read are written once and SQLAlchemy speaks each dialect (`INSERT ... ON
CONFLICT DO NOTHING` on both). The DSN comes from `HANDOFF_STALLS_DSN`
(`postgresql+psycopg://user:pass@host/db`); unset, it is `stalls.sqlite3` in the state
folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite

from activities.stage_events import StageEvent
from worker.logging import register_secrets
from worker.settings import Settings

log = structlog.get_logger("handoff.stalls")

metadata = sa.MetaData()
events = sa.Table(
    "handoff_stage_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(600), nullable=False, unique=True),
    sa.Column("workflow_id", sa.String(200), nullable=False, index=True),
    sa.Column("handoff_type", sa.String(64), nullable=False),
    sa.Column("crm", sa.String(32), nullable=False),
    sa.Column("deal_id", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("waiting_on", sa.String(300), nullable=False),
    sa.Column("owners", sa.String(6200), nullable=False),  # comma-separated emails
)


def default_dsn(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / 'stalls.sqlite3').resolve()}"


def open_store(settings: Settings) -> StallStore:
    """The store `HANDOFF_STALLS_DSN` names, or the state folder's SQLite file."""
    dsn = settings.stalls_dsn.get_secret_value() if settings.stalls_dsn else None
    if dsn:  # its password never reaches a log line
        register_secrets(dsn, sa.engine.make_url(dsn).password)
    return StallStore(dsn or default_dsn(settings.state_dir))


def _sqlite_pragmas(conn: Any, _record: object) -> None:
    """WAL: readers never block the writer; wait up to 30 s for a lock, never fail.
    Synced at checkpoints, not at each commit (`synchronous=NORMAL`): a write-back's
    stage event then costs no fsync on the activity's path. The file stays consistent;
    a power loss may drop the last events, which only the stall figures read."""
    cursor = conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class StallStore:
    """Records stage events and reads them back (see the module docstring)."""

    def __init__(self, dsn: str) -> None:
        if dsn.startswith("sqlite:///"):
            Path(dsn.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(dsn, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":  # the worker writes while the API and CLI read
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, event: StageEvent) -> None:
        """Keep one event; the same key again is a no-op. A reminder or escalation that
        names no stage takes the handoff's last known one."""
        stage = event.stage
        with self.engine.begin() as conn:
            if not stage:
                stage = (
                    conn.execute(
                        sa.select(events.c.stage)
                        .where(events.c.workflow_id == event.workflow_id, events.c.stage != "")
                        .order_by(events.c.at.desc(), events.c.id.desc())
                        .limit(1)
                    ).scalar()
                    or ""
                )
            row = {
                "key": event.key,
                "workflow_id": event.workflow_id,
                "handoff_type": event.handoff_type,
                "crm": event.crm,
                "deal_id": event.deal_id,
                "at": _utc(event.at),
                "kind": event.kind,
                "stage": stage,
                "waiting_on": event.waiting_on,
                "owners": ",".join(event.owners),
            }
            insert = (postgresql if self.dialect == "postgresql" else sqlite).insert(events)
            conn.execute(insert.values(**row).on_conflict_do_nothing(index_elements=["key"]))

    def read(
        self, *, handoff_type: str | None = None, until: datetime | None = None
    ) -> list[StageEvent]:
        """Every event (of one handoff type, before `until`), oldest first."""
        query = sa.select(events).order_by(events.c.at, events.c.id)
        if handoff_type:
            query = query.where(events.c.handoff_type == handoff_type)
        if until is not None:
            query = query.where(events.c.at < _utc(until))
        with self.engine.connect() as conn:
            rows: Sequence[sa.Row[tuple[object, ...]]] = conn.execute(query).all()
        return [
            StageEvent(
                key=r.key,
                workflow_id=r.workflow_id,
                handoff_type=r.handoff_type,
                crm=r.crm,
                deal_id=r.deal_id,
                at=_utc(r.at),
                kind=r.kind,
                stage=r.stage,
                waiting_on=r.waiting_on,
                owners=[o for o in r.owners.split(",") if o],
            )
            for r in rows
        ]

    def handoff_types(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(
                str(t) for t in conn.execute(sa.select(events.c.handoff_type).distinct()).scalars()
            )

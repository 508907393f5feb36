"""The bench's dev server keeps its SQLite file in write-ahead-log mode (fsync at
checkpoints, not at every commit), so the server's disk syncing does not eat the two
cores the worker is measured on, and what it commits is in the file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from worker.client.temporal import connect
from worker.devtools.bench_stack import BenchStack
from worker.settings import Settings

pytestmark = [pytest.mark.integration]


def test_the_bench_server_writes_its_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    """The server's namespace is in the file it writes, and the file is in WAL mode."""
    stack = BenchStack(tmp_path)
    try:
        address = stack.start_temporal()

        async def described() -> None:
            client = await connect(Settings(temporal_address=address))
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace="default")
            )

        asyncio.run(described())
        db = sqlite3.connect(tmp_path / "temporal.db")
        try:
            (mode,) = db.execute("PRAGMA journal_mode").fetchone()
            (namespaces,) = db.execute("SELECT count(*) FROM namespaces").fetchone()
        finally:
            db.close()
        assert mode == "wal"
        assert namespaces >= 1
    finally:
        stack.stop()

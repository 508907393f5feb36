"""What both CRM sandboxes share: fault controls, a way to serve an ASGI app, and how
their stores open SQLite.

Fault controls are set over HTTP (``POST /_sandbox/faults``) or in-process, so tests and
benchmarks can add latency, a 5xx rate, a burst of 429s or take the CRM down.
"""

from __future__ import annotations

import asyncio
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field


def open_store_db(path: Path | None) -> sqlite3.Connection:
    """A sandbox store's database: in memory, or a file kept in WAL mode and synced at
    checkpoints rather than at each commit. A sandbox's records outlive its process (a
    restart test reads them back), not the machine. In `handoff bench` the HubSpot
    sandbox's committing lines (create, update, associate: the fsync, and the waits on
    its lock behind it) were 44% of its samples, on the cores the worker and the
    Temporal server use. (The stall store and `handoff dev`'s server set the same two
    pragmas their own way: an SQLAlchemy connect hook, the temporal CLI's flags.)"""
    db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
    if path is not None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    return db


class FaultSettings(BaseModel):
    """The faults a sandbox injects before handling a request."""

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of 5xx answers.")
    burst_429: int = Field(default=0, ge=0, description="The next N requests get 429.")
    retry_after_s: int = Field(default=1, ge=0, le=3600)
    down: bool = Field(default=False, description="Every request gets 503.")
    expire_sessions: bool = Field(
        default=False, description="Salesforce: invalidate issued session ids once."
    )


class LostResponses(BaseModel):
    """How many upcoming writes are applied but answered 504 (a response lost in transit)."""

    count: int = Field(default=0, ge=0)


class Fault(BaseModel):
    """The fault chosen for one request, if any."""

    status: int
    retry_after_s: int = 0


@dataclass
class FaultControls:
    """Thread-safe fault state; `pick()` decides each request's fate."""

    settings: FaultSettings = field(default_factory=FaultSettings)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    def set(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings

    def pick(self) -> Fault | None:
        with self._lock:
            s = self.settings
            if s.down:
                return Fault(status=503)
            if s.burst_429 > 0:
                self.settings = s.model_copy(update={"burst_429": s.burst_429 - 1})
                return Fault(status=429, retry_after_s=s.retry_after_s)
            if s.error_rate and self._rng.random() < s.error_rate:
                return Fault(status=500)
            return None

    async def delay(self) -> None:
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)


def add_fault_routes(app: FastAPI, faults: FaultControls) -> None:
    """`GET|POST /_sandbox/faults`: read or replace the fault settings (no auth)."""

    @app.get("/_sandbox/faults")
    def get_faults() -> FaultSettings:
        return faults.settings

    @app.post("/_sandbox/faults")
    def set_faults(settings: FaultSettings) -> FaultSettings:
        faults.set(settings)
        return settings


def free_port() -> int:
    """An unused loopback port (for tests that start their own servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: How long a stopping sandbox lets its open connections close before it drops them.
GRACEFUL_SHUTDOWN_S = 2


class _SandboxServer(uvicorn.Server):
    """uvicorn, except that connections still open `GRACEFUL_SHUTDOWN_S` after shutdown
    began are dropped. An idle HTTPS keep-alive connection whose client no longer reads
    (a pooled connection of a client the test is done with) never answers the TLS close,
    and the server waited for it until the thread's join gave up: 10 s of every such
    test's teardown. Dropped, not cancelled: the loop ends with no transport left open."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async def drop_stragglers() -> None:
            await asyncio.sleep(GRACEFUL_SHUTDOWN_S)
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()

        dropping = asyncio.create_task(drop_stragglers())
        try:
            await super().shutdown(sockets)
        finally:
            dropping.cancel()


@contextmanager
def serve_in_thread(
    app: object,
    *,
    port: int,
    host: str = "127.0.0.1",
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> Iterator[str]:
    """Serve `app` with uvicorn on a background thread; yields the base URL."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        lifespan="off",
    )
    server = _SandboxServer(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"sandbox on port {port} did not start")
        time.sleep(0.02)
    scheme = "https" if ssl_certfile else "http"
    try:
        yield f"{scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

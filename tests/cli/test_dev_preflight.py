"""`handoff dev` refuses to start beside another stack, before it starts anything: a
busy port is named with the option that moves it, and a stack already running from the
same folder keeps its `running.json` (the file other terminals follow)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from sandbox.common import free_port
from worker.stack_file import RunningStack, read_running, write_running

HANDOFF = str(Path(sys.executable).parent / "handoff")


def dev(base: Path, temporal_port: int | None = None) -> subprocess.CompletedProcess[str]:
    ports = {"temporal": temporal_port or free_port(), "ui": free_port(), "api": free_port(),
             "sandbox": free_port()}  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "TEMPORAL_"))}
    return subprocess.run(
        [HANDOFF, "dev", "--state-dir", str(base), "--temporal-port", str(ports["temporal"]),
         "--ui-port", str(ports["ui"]), "--api-port", str(ports["api"]),
         "--sandbox-port", str(ports["sandbox"])],
        env={**clean, "HANDOFF_METRICS_PORT": str(free_port()), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_busy_port_is_named_with_its_option_and_nothing_starts(tmp_path: Path) -> None:
    """Temporal's port taken: exit 1 naming it and --temporal-port; no stack announced."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dev(tmp_path / "handoff", temporal_port=port)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, said
    assert f"Temporal port {port} (--temporal-port)" in said
    assert "Handoff dev stack" not in said  # the table of what runs is never printed
    assert not (tmp_path / "handoff" / "running.json").exists()


def test_a_stack_running_from_the_same_folder_is_left_alone(tmp_path: Path) -> None:
    """Another live stack's running.json: refused with its CRM and pid, file kept."""
    base = tmp_path / "handoff"
    base.mkdir()
    theirs = RunningStack(crm="salesforce", state_dir=str(base / "salesforce"),
                          pid=os.getpid(), api_url="", env={})  # fmt: skip
    write_running(base, theirs)
    result = dev(base)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, said
    assert f"already runs from {base} (salesforce, pid {os.getpid()})" in said
    assert read_running(base) == theirs

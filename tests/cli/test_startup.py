"""`handoff` starts without what its everyday commands do not use: every `status`, `list`
or `approve` is a fresh Python process (a user's shell loop polls `status`), so the
web framework, the CRM client libraries, the worker and the stall figures load only in
the commands that need them."""

from __future__ import annotations

import json
import subprocess
import sys

#: Loaded only by the commands that need them (`api`, `crm setup`, `worker`, `stalls`…).
NOT_AT_START = (
    "fastapi",
    "starlette",
    "simple_salesforce",
    "zeep",
    "hubspot",
    "connectors.salesforce",
    "connectors.hubspot",
    "worker.processes.worker",
    "worker.http",
    "worker.stalls.figures",
    "playwright",
    "sandbox",
    "sqlalchemy",
)


def test_the_cli_starts_without_the_web_app_the_crm_clients_or_the_worker() -> None:
    probe = (
        "import json, sys, worker.cli\n"
        f"names = {list(NOT_AT_START)!r}\n"
        "print(json.dumps(sorted(n for n in names if n in sys.modules)))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == []

"""The README, as written, on HubSpot (tests/support/readme.py says how it is run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.readme import run_readme

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)  # one stack on a loaded 2-core machine
def test_readme_blocks_run_in_order_on_hubspot(tmp_path: Path) -> None:
    """From one folder and one terminal: demo, status, approve (CLI and temporal CLI),
    evidence and accept to cash, and a rep editing a deal with HubSpot's own client (new
    terms, closed lost, re-opened), all succeed as written under `handoff dev`; the
    outputs match the README's, and a terminal with no settings at all reaches the deal."""
    run_readme("hubspot", tmp_path)
    assert sorted(p.name for p in (tmp_path / ".handoff").iterdir()) == ["hubspot"]

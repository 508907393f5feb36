"""The state folder and the files Handoff keeps in it, readable by the owner only.

The folder holds the used-link store, the dev stack's link secret and Temporal
database, and the sandbox's keys: a local user who could read them could replay a
decision's evidence or sign links. `private_dir` makes the folder 0700 and
`private_file` creates a file 0600 from the first byte (no window in which it is
world-readable; SQLite gives its journal and WAL files the database's mode).
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed; the folder itself is owner-only when it is
    ours (a mounted volume owned by another user keeps the mode its owner gave it)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if it is missing; tighten it if it exists."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    if path.stat().st_uid == os.geteuid():
        path.chmod(mode)


def write_private(path: Path, text: str) -> None:
    """Write a secret to a file that is 0600 before any byte is in it."""
    private_file(path)
    path.write_text(text, encoding="utf-8")

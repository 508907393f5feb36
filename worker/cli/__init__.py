"""`handoff`: the command line (the `handoff` console script points at `worker.cli:main`)."""

from worker.cli.commands import app, main

__all__ = ["app", "main"]

"""`python -m worker ...` is the same as the `handoff` command."""

from worker.cli import app

if __name__ == "__main__":
    app(prog_name="handoff")

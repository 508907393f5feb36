"""BENCHMARK ONLY: `handoff worker` with a smaller workflow cache.

`python -m worker.devtools.bench_worker_cache N` runs the product worker exactly as
`handoff worker` does (same settings from the environment, same workflows, activities
and options) except that it keeps `N` workflow runs in its cache instead of
`MAX_CACHED_WORKFLOWS`. `handoff bench --worker-cache N` uses it for the parked phase,
so a handoff woken from eviction can be measured with a few parked deals rather than
hundreds. Production never runs this module.
"""

from __future__ import annotations

import sys

import worker.processes.worker as worker_process
from worker.cli.commands import main as handoff


def main() -> None:
    size = int(sys.argv[1])
    if size < 1:
        raise SystemExit("the workflow cache needs at least 1 run")
    # `build_worker` reads the module constant when it builds the worker
    worker_process.MAX_CACHED_WORKFLOWS = size
    sys.argv = ["handoff", "worker"]
    handoff()


if __name__ == "__main__":
    main()

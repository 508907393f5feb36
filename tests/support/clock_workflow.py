"""A workflow that reads the wall clock: the sandbox must refuse it (its own module, so
the sandbox imports nothing else of the tests)."""

from __future__ import annotations

import time

from temporalio import workflow


@workflow.defn(sandboxed=True)
class ReadsTheClock:
    @workflow.run
    async def run(self) -> float:
        return time.time()  # not deterministic: the sandbox refuses it

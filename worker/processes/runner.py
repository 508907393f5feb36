"""The workflow sandbox, with the code it runs on each call compiled once.

Temporal's sandbox runs every call into a workflow run as `exec` of a short code string:
each activation, and (since temporalio 1.35's serialization contexts) each payload the
worker decodes or encodes for the run asks the run for its serialization and storage
contexts the same way. `exec` of a string compiles it each time (~40 µs here): in
`handoff bench`'s throughput phase that compile was ~10% of the worker's Python time
(py-spy `--native --gil`; docs/benchmarks.md). `SandboxedRunner` hands the sandbox a
code object compiled once per distinct string; what runs, and in which globals, is
unchanged.
"""

from __future__ import annotations

import functools
from types import CodeType
from typing import Any

from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import _runner as sdk_runner


@functools.lru_cache(maxsize=256)
def compiled(code: str) -> CodeType:
    """`code` as `exec` would compile it (the same filename `exec` gives a string)."""
    return compile(code, "<string>", "exec")


class _Instance(sdk_runner._Instance):
    def _run_code(self, code: str, **extra_globals: Any) -> None:
        super()._run_code(compiled(code), **extra_globals)  # type: ignore[arg-type]


class SandboxedRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose runs exec code compiled once (module docstring)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Instance(det, self.runner_class, self.restrictions)

"""The workflow sandbox, with the calls it makes per payload taken out of `exec`.

Temporal's sandbox runs every call into a workflow run as `exec` of a short code string
inside the sandbox's import restrictions: each activation, and (since temporalio 1.35's
serialization contexts) each payload the worker decodes or encodes for the run, which
asks the run for its serialization and storage contexts the same way. In `handoff
bench`'s throughput phase those two questions were 46% of the worker's Python time
(py-spy `--native --gil`; docs/benchmarks.md): the compile of the string each time, and
applying the sandbox's restricted `sys.modules`, `__import__` and builtins around a call
that only reads the run's info and pending commands.

`SandboxedRunner` changes two things, and nothing that workflow code runs under:
- the code strings (activations, the run's creation) are compiled once per distinct
  string and `exec` is handed the code object, in the same globals;
- the two context questions go straight to the run's in-sandbox instance (the SDK's own
  `InSandbox.get_serialization_context` / `get_external_store_context`, which build
  small dataclasses from the run's info and pending commands; they import nothing and
  run no workflow code), without `exec` and without applying the restrictions.

Both lean on the SDK's private `_Instance`; temporalio is pinned below 2 and
tests/replay/test_sandbox_runner.py fails if either stops holding.
"""

from __future__ import annotations

import functools
from types import CodeType
from typing import Any

from temporalio.converter import SerializationContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import _runner as sdk_runner

#: The name the SDK's `_Instance` gives the run's in-sandbox instance in its globals.
IN_SANDBOX = "__temporal_in_sandbox"


@functools.lru_cache(maxsize=256)
def compiled(code: str) -> CodeType:
    """`code` as `exec` would compile it (the same filename `exec` gives a string)."""
    return compile(code, "<string>", "exec")


class _Instance(sdk_runner._Instance):
    def _run_code(self, code: str, **extra_globals: Any) -> None:
        super()._run_code(compiled(code), **extra_globals)  # type: ignore[arg-type]

    @property
    def _in_sandbox(self) -> Any:
        return self.globals_and_locals[IN_SANDBOX]  # set by the SDK's `_create_instance`

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        context: SerializationContext | None = self._in_sandbox.get_serialization_context(
            command_info
        )
        return context

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._in_sandbox.get_external_store_context(command_info)


class SandboxedRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` with compiled code and direct context calls (module
    docstring)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Instance(det, self.runner_class, self.restrictions)

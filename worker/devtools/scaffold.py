"""`handoff new <name>`: the files of a new handoff, ready to run and to test.

`scaffold("onboarding", root)` writes, under the repository `root`:

- `workflows/onboarding.py`: a `HandoffWorkflow` subclass with an evidence-gated stage,
  then the deal desk (the policy's approval ladder; it declares `has_ladder`);
- `workflows/onboarding.policy.yaml`: its policy section (an evidence kind and a
  `handoffs.onboarding` stage) to paste into the policy file, so ops own its SLA;
- `tests/workflows/test_onboarding.py`: time-skipping tests that pass as generated;
- `tests/replay/histories/onboarding.placeholder.json`: what to record before shipping;

and adds the type `onboarding` to `GENERATED` in `workflows/registry.py`, so the worker
registers it and every surface (CLI `--type`, API, pages, inbox, board, links) reaches
it with no hand wiring.

Nothing is overwritten: an existing file, an already registered type or a bad name is
refused before anything is written, with a message saying why.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from worker.devtools.scaffold_templates import (
    PLACEHOLDER,
    POLICY,
    TEST,
    WORKFLOW,
    workflows_imports,
)

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
#: Module names under `workflows/` that a new handoff must not shadow.
RESERVED = frozenset(
    {
        "baseline",
        "change_feed",
        "default_policy",
        "discount_approval",
        "kit",
        "lead_to_cash",
        "messages",
        "metrics",
        "names",
        "options",
        "policy",
        "registry",
        "renewal",
        "test",
    }
)
MAX_NAME = 32
#: The registry `scaffold` adds each new type to, and the line it adds above.
REGISTRY = Path("workflows") / "registry.py"
REGISTRY_MARKER = "    # handoff new: generated types above this line\n"


class ScaffoldError(ValueError):
    """A name that cannot become a handoff, or files that already exist."""


def check_name(name: str) -> None:
    """Refuse anything but a fresh snake_case module name (`customer_onboarding`)."""
    if not _SNAKE.match(name):
        raise ScaffoldError(
            f"handoff name {name!r} must be snake_case: lowercase letters, digits and single "
            "underscores, starting with a letter (e.g. customer_onboarding)"
        )
    if len(name) > MAX_NAME:
        raise ScaffoldError(f"handoff name {name!r} is longer than {MAX_NAME} characters")
    if keyword.iskeyword(name) or name in RESERVED:
        raise ScaffoldError(f"handoff name {name!r} is reserved; choose another name")


def class_name(name: str) -> str:
    """`customer_onboarding` → `CustomerOnboarding` (the workflow type name)."""
    return "".join(part.capitalize() for part in name.split("_"))


def planned_files(name: str, root: Path) -> list[Path]:
    """The files `scaffold` writes for `name`, in order."""
    return [
        root / "workflows" / f"{name}.py",
        root / "workflows" / f"{name}.policy.yaml",
        root / "tests" / "workflows" / f"test_{name}.py",
        root / "tests" / "replay" / "histories" / f"{name}.placeholder.json",
    ]


def scaffold(name: str, root: Path) -> list[Path]:
    """Write a new handoff's workflow, policy section, tests and replay placeholder.

    Returns the paths written. Raises `ScaffoldError` for a bad name, a root that is
    not a Handoff repository, or any file that already exists (nothing is written then).
    """
    check_name(name)
    root = Path(root)
    if not (root / "workflows" / "kit" / "handoff.py").is_file():
        raise ScaffoldError(f"{root} is not a Handoff repository (no workflows/kit/handoff.py)")
    paths = planned_files(name, root)
    existing = [str(p.relative_to(root)) for p in paths if p.exists()]
    if existing:
        raise ScaffoldError(
            f"handoff {name!r} already has files: {', '.join(existing)}; "
            "choose another name or remove them"
        )
    registry = root / REGISTRY
    registered = registry_with(registry.read_text(encoding="utf-8"), name)
    values = {
        "name": name,
        "Class": class_name(name),
        "title": name.replace("_", " ").capitalize(),
        "prefix": name.replace("_", "-"),
        "evidence": f"{name}_confirmed",
        "workflows_imports": workflows_imports(name, class_name(name)),
    }
    for path, template in zip(paths, (WORKFLOW, POLICY, TEST, PLACEHOLDER), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(values), encoding="utf-8")
    registry.write_text(registered, encoding="utf-8")
    return paths


def type_name(name: str) -> str:
    """`customer_onboarding` → `customer-onboarding`: the public type name and id prefix."""
    return name.replace("_", "-")


def registry_entry(name: str) -> str:
    """The entry `scaffold` adds to `GENERATED` in workflows/registry.py, laid out as
    `ruff format` would (one line, or one value per line past 100 columns)."""
    values = (f'"{type_name(name)}"', f'"{name}"', f'"{class_name(name)}"')
    line = f"    ({', '.join(values)}),\n"
    if len(line) <= 101:
        return line
    return "    (\n" + "".join(f"        {v},\n" for v in values) + "    ),\n"


def registry_with(text: str, name: str) -> str:
    """The registry's source with `name`'s entry added above the marker. Refuses a
    registry without the marker, or one that already registers this type or module."""
    if REGISTRY_MARKER not in text:
        raise ScaffoldError(f"{REGISTRY} has no line {REGISTRY_MARKER.strip()!r} to add to")
    if f'"{type_name(name)}",' in text or f'"{name}",' in text:
        raise ScaffoldError(f"handoff {name!r} is already registered in {REGISTRY}")
    before, marker, after = text.partition(REGISTRY_MARKER)
    return before + registry_entry(name) + marker + after

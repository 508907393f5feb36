"""`handoff new <name>`: the generated handoff is registered, runs, passes its own tests,
waits on the approval ladder and is reached on every surface, and is lint-clean.

Every test scaffolds into a copy of the repository under a fresh name (`fresh`), so a
type someone already made with `handoff new` (docs/adding-a-handoff.md makes
`site_survey`) never clashes with the test's, and the copy is removed afterwards; the
real tree is checked to be unchanged after each test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.devtools.scaffold import (
    REGISTRY,
    ScaffoldError,
    class_name,
    planned_files,
    registry_entry,
    scaffold,
    type_name,
)

REPO = Path(__file__).parents[2]
#: What a generated handoff needs of the repository: the packages, the test fixtures, and
#: the surface checks `scaffolded_surfaces.py` shares with the renewal's tests.
LAYOUT = ("workflows", "activities", "connectors", "worker", "sandbox", "pyproject.toml")
TEST_SUPPORT = (
    "conftest.py",
    "support",
    "scaffold/scaffolded_surfaces.py",
)
#: Where `scaffold` writes in a tree: these must look the same after every test here.
WRITTEN_UNDER = ("workflows", "tests/workflows", "tests/replay/histories")


def fresh(base: str) -> str:
    """`base` with a random suffix: a name no one has scaffolded (at most 32 characters)."""
    suffix = uuid.uuid4().hex[:6]
    return f"{base[: 32 - len(suffix) - 1]}_{suffix}"


def tree(root: Path) -> tuple[list[str], str]:
    """The files `scaffold` could add under `root`, and the registry's text."""
    files = sorted(
        p.relative_to(root).as_posix()
        for under in WRITTEN_UNDER
        for p in (root / under).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    return files, (root / REGISTRY).read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def real_tree_untouched() -> Iterator[None]:
    """No test here writes a handoff into the real repository."""
    before = tree(REPO)
    yield
    assert tree(REPO) == before


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository layout, so generated files never touch the real tree;
    removed after the test."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in LAYOUT:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=ignore)
        else:
            shutil.copy2(src, tmp_path / name)
    for name in TEST_SUPPORT:
        src, dst = REPO / "tests" / name, tmp_path / "tests" / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def run(
    repo: Path, *args: str, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a tool from this venv inside the copy. Its packages shadow the installed ones,
    also in the processes it starts (the `handoff` CLI), through PYTHONPATH."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_generated_handoff_passes_its_own_tests_unmodified(repo: Path) -> None:
    """Right after `scaffold`, pytest on the generated test file passes all its tests,
    including the one that reaches the new type through the client path."""
    name = fresh("customer_onboarding")
    written = scaffold(name, repo)
    assert [p.relative_to(repo).as_posix() for p in written] == [
        f"workflows/{name}.py",
        f"workflows/{name}.policy.yaml",
        f"tests/workflows/test_{name}.py",
        f"tests/replay/histories/{name}.placeholder.json",
    ]
    generated_tests = f"tests/workflows/test_{name}.py"
    result = run(repo, "pytest", "-q", "-p", "no:cacheprovider", generated_tests)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(600)
def test_generated_handoff_waits_on_its_ladder_and_every_surface_reaches_it(
    repo: Path,
) -> None:
    """Right after `scaffold`, with no other change, a real worker on the dev server runs
    the new type: it waits on the sales manager's tier; `handoff approve --type` decides
    it and `status --json` right after shows the next tier; `list`, `stuck`, the inbox
    and the stall board show it; its API route, its page and a signed link approve it
    (scaffolded_surfaces.py, run in the copy: the same checks as the renewal's)."""
    name = fresh("site_survey")
    scaffold(name, repo)
    surfaces = "tests/scaffold/scaffolded_surfaces.py"
    result = run(
        repo, "pytest", "-q", "-p", "no:cacheprovider", surfaces,
        timeout=540, SCAFFOLDED_HANDOFF=name,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout


def test_the_new_type_is_registered_for_the_worker_and_every_surface(repo: Path) -> None:
    """`scaffold` adds the type to workflows/registry.py: the registry resolves its name,
    parses its workflow ids, the worker registers its workflow, and its declared ladder
    puts its approvals in inboxes."""
    name = fresh("site_survey")
    scaffold(name, repo)
    assert registry_entry(name) in (repo / REGISTRY).read_text()
    probe = (
        "from workflows import registry; from worker.processes.worker import WORKFLOWS; "
        f"t = registry.get({type_name(name)!r}); "
        "print(t.workflow_type, t.workflow in WORKFLOWS, t.has_ladder, "
        f"registry.parse_workflow_id(t.workflow_id('hubspot', '7'))[0] is t)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [class_name(name), "True", "True", "True"]


def test_scaffolding_a_registered_type_again_is_refused(repo: Path) -> None:
    """A second `handoff new` with the same name writes nothing and leaves the registry."""
    name = fresh("survey")
    scaffold(name, repo)
    for path in planned_files(name, repo):
        path.unlink()
    before = (repo / REGISTRY).read_text()
    with pytest.raises(ScaffoldError, match="already registered"):
        scaffold(name, repo)
    assert (repo / REGISTRY).read_text() == before
    assert not any(p.exists() for p in planned_files(name, repo))


def test_generated_files_are_lint_and_format_clean(repo: Path) -> None:
    """The workflow and its tests pass `ruff check` and `ruff format --check` as generated."""
    # one short, one longest; and an all-digit suffix, whose class name is all capitals
    # (`A275576`): isort orders it with the constants
    names = [fresh("a"), fresh("x" * 32), f"b_{uuid.uuid4().int % 10**6:06d}"]
    assert len(names[1]) == 32
    written = [str(p) for n in names for p in scaffold(n, repo) if p.suffix == ".py"]
    written.append(str(repo / REGISTRY))
    lint = run(repo, "ruff", "check", "--no-cache", *written)
    assert lint.returncode == 0, lint.stdout
    fmt = run(repo, "ruff", "format", "--check", "--no-cache", *written)
    assert fmt.returncode == 0, fmt.stdout


def test_policy_snippet_validates_with_the_default_policy(repo: Path) -> None:
    """The generated section pastes into the policy and names known roles and evidence."""
    import yaml

    from workflows.policy import default_policy, parse_policy

    name = fresh("site_survey")
    scaffold(name, repo)
    snippet = yaml.safe_load((repo / "workflows" / f"{name}.policy.yaml").read_text())
    data = default_policy().model_dump(mode="json")
    for key, section in snippet.items():
        data.setdefault(key, {}).update(section)
    policy = parse_policy(data)
    assert policy.handoffs[name].evidence == [f"{name}_confirmed"]
    assert f"{name}_confirmed" in policy.evidence


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("CustomerOnboarding", "must be snake_case"),
        ("customer-onboarding", "must be snake_case"),
        ("9lives", "must be snake_case"),
        ("double__underscore", "must be snake_case"),
        ("trailing_", "must be snake_case"),
        ("", "must be snake_case"),
        ("x" * 33, "longer than 32"),
        ("class", "is reserved"),
        ("lead_to_cash", "is reserved"),
        ("policy", "is reserved"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(repo: Path, name: str, why: str) -> None:
    """A name that cannot be a module (or would shadow one) is refused with the reason."""
    before = sorted(p for p in repo.rglob("*") if p.is_file())
    with pytest.raises(ScaffoldError, match=why):
        scaffold(name, repo)
    assert sorted(p for p in repo.rglob("*") if p.is_file()) == before


def test_existing_files_are_never_overwritten(repo: Path) -> None:
    """If any file of the handoff exists, scaffold refuses, names it and writes nothing."""
    name = fresh("onboarding")
    test_file = planned_files(name, repo)[2]
    test_file.parent.mkdir(parents=True, exist_ok=True)
    test_file.write_text("# mine\n")
    registry_before = (repo / REGISTRY).read_text()
    with pytest.raises(ScaffoldError, match=re.escape(f"tests/workflows/test_{name}.py")):
        scaffold(name, repo)
    assert test_file.read_text() == "# mine\n"
    assert not (repo / "workflows" / f"{name}.py").exists()
    assert (repo / REGISTRY).read_text() == registry_before


def test_a_folder_that_is_not_a_handoff_repository_is_refused(tmp_path: Path) -> None:
    """Scaffolding outside a Handoff checkout fails instead of scattering files."""
    with pytest.raises(ScaffoldError, match="not a Handoff repository"):
        scaffold("onboarding", tmp_path)
    assert not any(tmp_path.iterdir())


def test_class_name_is_the_camel_case_of_the_name() -> None:
    """`customer_onboarding` becomes the workflow type `CustomerOnboarding`."""
    assert class_name("customer_onboarding") == "CustomerOnboarding"
    assert class_name("qbr2_prep") == "Qbr2Prep"

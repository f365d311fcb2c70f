"""The house keeps its shape: the import contracts of docs/architecture.md hold (import-linter,
contracts in pyproject.toml) and the packages type-check (mypy, settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wire.paths import REPO

PACKAGES = ("wire", "center", "edge", "simulators", "gridwatch")


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # The virtualenv's tools, from the repository root so that pyproject.toml's settings apply.
    return subprocess.run([*args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = _run(str(lint_imports), "--no-cache", timeout=300)
    assert result.returncode == 0, (
        "an import crosses the layers of docs/architecture.md (contracts in pyproject.toml):\n"
        + result.stdout[-6000:] + result.stderr[-2000:])


def test_packages_type_check() -> None:
    result = _run(sys.executable, "-m", "mypy", *PACKAGES, timeout=900)
    assert result.returncode == 0, (
        "mypy found type errors (settings in pyproject.toml, [tool.mypy]):\n"
        + result.stdout[-8000:] + result.stderr[-2000:])

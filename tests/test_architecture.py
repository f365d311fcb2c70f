"""The house keeps its shape: the import contracts of docs/architecture.md hold (import-linter,
contracts in pyproject.toml) and the packages type-check (mypy, settings in pyproject.toml)."""

from __future__ import annotations

import ast
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


#: A connection's or cursor's methods that run SQL (``copy`` left out: dicts have one too).
SQL_METHODS = {"execute", "executemany", "cursor"}


def _sql_calls(path: Path) -> list[str]:
    """Where a module calls a connection's or cursor's SQL methods (any receiver: the import
    contract alone would not see a ``Connection`` handed down and used above the store)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(REPO)}:{node.lineno} .{node.func.attr}()"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS]


def test_sql_runs_only_in_the_store() -> None:
    outside = [call for path in sorted((REPO / "center").rglob("*.py"))
               if "store" not in path.relative_to(REPO / "center").parts[:1]
               for call in _sql_calls(path)]
    assert outside == [], "SQL runs outside center/store/ (docs/architecture.md):\n" + "\n".join(
        outside)
    assert _sql_calls(REPO / "center" / "store" / "alerts.py"), "the check finds no SQL at all"

"""The code passes the linter: ``ruff check .`` with the rules in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

from wire.paths import REPO


def test_ruff_check_passes() -> None:
    # The virtualenv's ruff (a dev dependency), run as a module so that no other ruff on PATH
    # answers; from the repository root, so that pyproject.toml's settings apply.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", ".", "--no-cache", "--output-format", "concise"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert "No module named ruff" not in output, (
        f"ruff is missing from {sys.executable}: pip install -e '.[dev]' (make test does)")
    assert result.returncode == 0, (
        f"`ruff check .` found problems; fix them (`ruff check . --fix` does the safe ones), or\n"
        f"where a rule is wrong for a line, say why in a `# noqa: CODE - reason`:\n{output}")

#!/usr/bin/env bash
# Writes .ci/constraints.txt from what .venv holds now: every Python package pinned, so a fresh
# machine (CI included) installs exactly what was tested. Run after changing a dependency in
# pyproject.toml and installing it (bash .ci/setup.sh), then run the tests and commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
pip=(.venv/bin/python -m pip --disable-pip-version-check)
headless=$("${pip[@]}" show opencv-python-headless | awk '/^Version/{print $2}')
{
    echo "# Every Python package the project installs, pinned (written by .ci/lock.sh from a tested"
    echo "# .venv): a fresh machine gets what CI tested. torch is the local CPU build; ultralytics's"
    echo "# GUI OpenCV is pinned to the headless build's version, which setup.sh keeps instead."
    {
        "${pip[@]}" freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+cpu$/\1/' \
            | grep -v '^opencv-python=='
        echo "opencv-python==$headless"
    } | LC_ALL=C sort -f
} > .ci/constraints.txt
echo "wrote .ci/constraints.txt ($(grep -c '==' .ci/constraints.txt) pins)"

"""What the distributions hold: the production package (the repository's pyproject.toml) ships
wire, center, edge and gridwatch with the files they read at run time, never the simulators;
the simulators are a distribution of their own whose ``sim`` and ``demo`` join the gridwatch
command through the ``gridwatch.commands`` entry points, and without them ``gridwatch demo``
says how to install them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from click.testing import CliRunner

from gridwatch.cli import build_cli, cli
from wire.paths import REPO


def _project(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


def test_simulators_distribution_has_gridwatchs_version_and_pins_it() -> None:
    root, sims = _project(REPO / "pyproject.toml"), _project(REPO / "simulators/pyproject.toml")
    assert sims["version"] == root["version"]
    assert sims["dependencies"] == [f"gridwatch=={root['version']}"]


def test_installed_simulators_bring_sim_and_demo() -> None:
    assert {"sim", "demo"} <= set(cli.commands)
    result = CliRunner().invoke(cli, ["sim", "--help"])
    assert result.exit_code == 0 and "replay" in result.output


def test_without_the_simulators_demo_says_how_to_install_them() -> None:
    bare = build_cli([])
    assert not {"sim", "demo"} & set(bare.commands)
    assert "demo" not in CliRunner().invoke(bare, ["--help"]).output
    for args in (["demo"], ["sim", "replay", "x.mp4"]):
        result = CliRunner().invoke(bare, args)
        assert result.exit_code == 2, result.output
        assert "gridwatch-simulators" in result.output
        assert "pip install -e simulators/" in result.output
    assert CliRunner().invoke(bare, ["center", "--help"]).exit_code == 0


def test_wheel_ships_the_parts_with_their_data_and_no_simulators(tmp_path: Path) -> None:
    """The wheel ``pip install .`` builds (setuptools' PEP 517 hook, from a copy of the tree so
    the checkout gets no build folders)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("wire", "center", "edge", "gridwatch", "simulators"):
        shutil.copytree(REPO / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    out = tmp_path / "dist"
    hook = ("import sys; from setuptools import build_meta; "
            "print(build_meta.build_wheel(sys.argv[1]))")
    build = subprocess.run([sys.executable, "-c", hook, str(out)], cwd=src, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr[-4000:]
    wheel = out / build.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if "/" in n and ".dist-info/" not in n} == {
        "wire", "center", "edge", "gridwatch"}
    migrations = sorted(p.name for p in (REPO / "center/store/migrations").glob("*.sql"))
    assert migrations and all(f"center/store/migrations/{m}" in names for m in migrations)
    for data in ("center/defaults/event_types.yaml", "center/defaults/time_limits.yaml",
                 "center/defaults/district/district.yaml", "center/defaults/district/grids.geojson",
                 "center/api/vocabulary_names.yaml", "edge/defaults/example.yaml"):
        assert data in names

"""``gridwatch sim district``: a generated district is deterministic from its seed and valid
for the center (``gridwatch center check-district``)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from center.domain.district import load_district
from gridwatch.cli import cli


def _gen(out: Path, seed: int, *sizes: str) -> str:
    result = CliRunner().invoke(cli, ["sim", "district", *sizes, "--seed", str(seed),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


def test_town_sized_district_is_deterministic_and_valid(tmp_path: Path) -> None:
    out = _gen(tmp_path / "a", 1)
    assert "217 areas, 1150 cameras" in out
    _gen(tmp_path / "b", 1)
    _gen(tmp_path / "c", 2)
    for name in ("district.yaml", "grids.geojson"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "district.yaml").read_bytes() != \
        (tmp_path / "c" / "district.yaml").read_bytes()
    check = CliRunner().invoke(cli, ["center", "check-district",
                                     str(tmp_path / "a" / "district.yaml")])
    assert check.exit_code == 0 and "1150 cameras" in check.output
    d = load_district(tmp_path / "a" / "district.yaml")
    micro = [a for a in d.areas.values() if a.level == "micro_grid"]
    assert len(micro) == 172 and len(d.areas) - len(micro) == 45
    # every camera lies in a micro-grid, and every micro-grid has an owner to route to
    assert all(d.micro_grid_of(c) for c in d.cameras)
    assert all(d.people_in(m.id) for m in micro)


def test_small_district_and_bad_sizes(tmp_path: Path) -> None:
    assert "9 areas, 20 cameras" in _gen(tmp_path / "s", 3, "--communities", "3",
                                         "--micro-grids", "6", "--cameras", "20")
    bad = CliRunner().invoke(cli, ["sim", "district", "--communities", "5", "--micro-grids",
                                   "3", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "communities <= micro_grids" in bad.output

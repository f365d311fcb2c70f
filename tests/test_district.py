"""Routing by place, A → B → leader fallback, and clear errors for broken district files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from center.district import DistrictError, load_district
from center.paths import DEFAULTS_DIR

DEMO = DEFAULTS_DIR / "district" / "district.yaml"


def test_demo_district_routes_each_camera_to_its_a_post() -> None:
    d = load_district(DEMO)
    assert d.micro_grid_of("cam-vn-01") == "mg-011"
    assert d.owner_of("mg-011").id == "w-0111"
    assert d.micro_grid_of("unknown-cam") is None


def _write(tmp: Path, people: list[dict], cameras: list[dict] | None = None,
           extra: str = "") -> Path:
    src = json.loads((DEFAULTS_DIR / "district" / "grids.geojson").read_text())
    (tmp / "grids.geojson").write_text(json.dumps(src))
    import yaml

    doc = {"id": "t", "name": "t", "grids": "grids.geojson",
           "cameras": cameras or [{"id": "c1", "lon": 120.1525, "lat": 30.2715}],
           "people": people}
    (tmp / "d.yaml").write_text(yaml.safe_dump(doc) + extra)
    return tmp / "d.yaml"


def test_fallback_b_post_then_leader(tmp_path: Path) -> None:
    b_only = _write(tmp_path, [
        {"id": "b", "name": "B", "role": "worker", "micro_grid": "mg-011", "post": "B"},
        {"id": "l", "name": "L", "role": "micro_grid_leader", "micro_grid": "mg-011"}])
    assert load_district(b_only).owner_of("mg-011").id == "b"
    leader_only = _write(tmp_path, [
        {"id": "l", "name": "L", "role": "micro_grid_leader", "micro_grid": "mg-011"}])
    assert load_district(leader_only).owner_of("mg-011").id == "l"
    nobody = _write(tmp_path, [])
    assert load_district(nobody).owner_of("mg-011") is None


def test_camera_override_beats_polygon(tmp_path: Path) -> None:
    path = _write(tmp_path, [], cameras=[
        {"id": "c1", "lon": 120.1525, "lat": 30.2715, "micro_grid": "mg-022"}])
    assert load_district(path).micro_grid_of("c1") == "mg-022"


@pytest.mark.parametrize(("people", "extra", "message"), [
    ([{"id": "w", "name": "W", "role": "worker", "post": "A"}], "", "needs a micro_grid"),
    ([{"id": "w", "name": "W", "role": "worker", "micro_grid": "nowhere", "post": "A"}], "", "unknown area 'nowhere'"),
    ([{"id": "w", "name": "W", "role": "janitor"}], "", "people.0.role"),
    ([], "colour: red\n", "colour: Extra inputs are not permitted"),
    ([], "  bad: [indent\n", "not valid YAML"),
])
def test_errors_name_file_and_key(tmp_path: Path, people: list, extra: str, message: str) -> None:
    path = _write(tmp_path, people, extra=extra)
    with pytest.raises(DistrictError) as err:
        load_district(path)
    assert str(path) in str(err.value) and message in str(err.value)

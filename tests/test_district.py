"""Routing by place, A → B → leader fallback, and clear errors for broken district files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from center.domain.district import DistrictError, load_district
from wire.paths import DEFAULTS_DIR

DEMO = DEFAULTS_DIR / "district" / "district.yaml"


def test_demo_district_routes_each_camera_to_its_a_post() -> None:
    d = load_district(DEMO)
    assert d.micro_grid_of("cam-vn-01") == "mg-011"
    assert d.owner_of("mg-011").id == "w-0111"
    assert d.micro_grid_of("unknown-cam") is None


def test_a_copy_with_other_people_or_cameras_routes_by_them() -> None:
    """The district keeps lookups (people by micro-grid, each camera's micro-grid); a copy
    made with other people or cameras must not answer from the original's."""
    d = load_district(DEMO)
    assert d.owner_of("mg-011").id == "w-0111" and d.micro_grid_of("cam-vn-01") == "mg-011"
    off = d.people["w-0111"].model_copy(update={"active": False})
    moved = d.cameras["cam-vn-01"].model_copy(update={"micro_grid": "mg-022"})
    copy = d.model_copy(update={"people": d.people | {"w-0111": off},
                                "cameras": d.cameras | {"cam-vn-01": moved}})
    assert copy.owner_of("mg-011").id == "w-0112"  # the B post
    assert copy.micro_grid_of("cam-vn-01") == "mg-022"
    assert d.owner_of("mg-011").id == "w-0111" and d.micro_grid_of("cam-vn-01") == "mg-011"


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
    ([{"id": "w", "name": "W", "role": "worker", "micro_grid": "nowhere", "post": "A"}], "",
     "unknown area 'nowhere'"),
    ([{"id": "w", "name": "W", "role": "janitor"}], "", "people[0].role"),
    ([], "colour: red\n", "colour: Extra inputs are not permitted"),
    ([], "  bad: [indent\n", "invalid YAML"),
])
def test_errors_name_file_and_key(tmp_path: Path, people: list, extra: str, message: str) -> None:
    path = _write(tmp_path, people, extra=extra)
    with pytest.raises(DistrictError) as err:
        load_district(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_reimport_updates_in_place_and_keeps_history(db_dsn: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import psycopg

    env = {**os.environ, "GRIDWATCH_DB__DSN": db_dsn}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gridwatch.cli", "center", "import-district",
                               *args], env=env, capture_output=True, text=True, timeout=60,
                              check=False)

    first = cli(str(DEMO), "--commit")
    assert first.returncode == 0, first.stderr
    smaller = _write(tmp_path, [
        {"id": "w-0111", "name": "王芳 (renamed)", "role": "worker", "micro_grid": "mg-011",
         "post": "A"}])
    dry = cli(str(smaller))
    assert "people: 0 new, 16 removed, 1 kept" in dry.stdout and "dry run" in dry.stdout
    assert cli(str(smaller), "--commit").returncode == 0
    with psycopg.connect(db_dsn) as conn:
        rows = dict(conn.execute("SELECT id, active FROM district_people").fetchall())
        name = conn.execute("SELECT name FROM district_people WHERE id = 'w-0111'").fetchone()
        ops = conn.execute("SELECT count(*) FROM ops_ledger WHERE action = 'import_district'")
        assert ops.fetchone()[0] == 2
    assert rows["w-0111"] is True and rows["w-0112"] is False and len(rows) == 17
    assert name[0] == "王芳 (renamed)"
    broken = cli(str(tmp_path / "missing.yaml"))
    assert broken.returncode == 1 and "cannot read" in broken.stderr

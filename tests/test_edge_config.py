"""Edge config: typos and bad values fail at load time with file, key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import edge_group
from edge.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "edge" / "defaults" / "example.yaml"

VALID = """\
edge_id: e1
cameras:
  - id: cam1
    source: clip.mp4
    zones:
      - id: z1
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]
        event_type: "0506"
        classes: [two_wheeler]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return str(exc.value)


def test_valid_config_gets_defaults_and_resolves_relative_source(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.broker.port == 1883 and config.detector.model == "nanodet-m-416-coco"
    camera = config.cameras[0]
    assert camera.source == str(tmp_path / "clip.mp4")
    assert camera.zones[0].dwell_s == 30 and camera.sample_fps == 1.0


def test_live_sources_are_not_treated_as_paths(tmp_path: Path) -> None:
    text = VALID.replace("source: clip.mp4", "source: rtsp://u:p@10.0.0.5/stream1")
    assert load_config(write(tmp_path, text)).cameras[0].source == "rtsp://u:p@10.0.0.5/stream1"
    text = VALID.replace("source: clip.mp4", 'source: "0"')
    assert load_config(write(tmp_path, text)).cameras[0].source == "0"


def test_example_config_is_valid() -> None:
    assert load_config(EXAMPLE).cameras[0].zones[0].rules[0].event_type == "0506"


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ("[0.9, 0.9]]", "[1.5, 0.9]]", "cameras[0].zones[0].polygon", "outside 0..1"),
        ("[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]", "[[0.1, 0.1], [0.9, 0.1]]",
         "cameras[0].zones[0].polygon", "at least 3"),
        ("classes: [two_wheeler]", "classes: [two_wheeler]\n        dwel_s: 5",
         "cameras[0].zones[0].dwel_s", "Extra inputs"),
        ("classes: [two_wheeler]", "classes: [ebike]", "cameras[0].zones[0].classes",
         "unknown classes"),
        ('"0506"', '"506"', "cameras[0].zones[0].event_type", "pattern"),
        ("source: clip.mp4", "source: clip.mp4\n    sample_fps: 60",
         "cameras[0].sample_fps", "less than or equal to 30"),
        ("edge_id: e1", "edge_id: e1\nbrokr: {host: x}", "brokr", "Extra inputs"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, old: str, new: str, key: str,
                                          problem: str) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    message = error_of(path)
    assert str(path) in message and key in message and problem in message, message


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("  - id: cam1", "  - id: [cam1"))
    message = error_of(path)
    assert str(path) in message and "line" in message and "invalid YAML" in message, message


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in error_of(tmp_path / "nope.yaml")


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    text = VALID + VALID.split("cameras:\n", 1)[1]
    assert "duplicate camera id 'cam1'" in error_of(write(tmp_path, text))


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(edge_group, ["check-config", str(write(tmp_path, VALID))])
    assert ok.exit_code == 0 and ok.output.startswith("OK"), ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("edge_id: e1", "edge_id: 'bad id'"))
    failed = runner.invoke(edge_group, ["check-config", str(bad)])
    assert failed.exit_code == 1 and "edge_id" in failed.output
    usage = runner.invoke(edge_group, ["check-config"])
    assert usage.exit_code == 2


def test_errors_name_the_line_of_the_bad_key(tmp_path: Path) -> None:
    """A typo'd key points at its own line, a bad value at the line that holds it, and a rule
    error inside a list of mappings at that item's line."""
    text = VALID.replace("classes: [two_wheeler]", "classes: [two_wheeler]\n        dwel_s: 5")
    text = text.replace("  - id: cam1\n", "  - id: cam1\n    sample_fps: 99\n")
    path = write(tmp_path, text)
    lines = text.splitlines()
    message = error_of(path)
    typo = next(i for i, line in enumerate(lines, 1) if "dwel_s" in line)
    fps = next(i for i, line in enumerate(lines, 1) if "sample_fps" in line)
    assert f"{path}:{typo}: cameras[0].zones[0].dwel_s: Extra inputs" in message, message
    assert f"{path}:{fps}: cameras[0].sample_fps:" in message, message

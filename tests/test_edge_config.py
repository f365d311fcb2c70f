"""Edge config: typos and bad values fail at load time with file, key path and reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from edge.cli import edge_group
from edge.config import ConfigError, load_config
from simulators.local_services import free_port
from tests.conftest import shared

EXAMPLE = Path(__file__).resolve().parents[1] / "edge" / "defaults" / "example.yaml"
VTEST = "media/vtest.avi"

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
    ok = runner.invoke(edge_group, ["check-config", "--no-sources", str(write(tmp_path, VALID))])
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


# --- check-config beyond the YAML: model, weights, sources ----------------------------------

CHECKED = """\
edge_id: e1
detector:
  model: nanodet-m-416-coco
cameras:
  - id: cam1
    source: {source}
    timeout_s: 5
    zones:
      - id: z1
        polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]
        rules: [{{type: illegal_parking}}]
"""


def check(path: Path, *args: str) -> Result:
    return CliRunner().invoke(edge_group, ["check-config", *args, str(path)])


def line_with(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_check_config_opens_a_real_clip_and_the_model() -> None:
    """The shipped example: its model is registered, its weights are there, its clip plays."""
    result = check(EXAMPLE)
    assert result.exit_code == 0, result.output
    assert "model nanodet-m-416-coco" in result.output
    assert "every source delivered a frame" in result.output


def test_check_config_unknown_model_fails_on_its_line(tmp_path: Path) -> None:
    text = CHECKED.format(source=shared(VTEST)).replace("nanodet-m-416-coco", "nanodet-m-416")
    path = write(tmp_path, text)
    result = check(path, "--no-sources")
    assert result.exit_code == 1, result.output
    assert (f"{path}:{line_with(text, 'model:')}: detector.model: unknown model "
            f"'nanodet-m-416'") in result.output
    assert "nanodet-m-416-coco" in result.output  # the names that do exist


def test_check_config_missing_weights_fail(tmp_path: Path) -> None:
    text = CHECKED.format(source=shared(VTEST)).replace(
        "model: nanodet-m-416-coco", f"model: nanodet-m-416-coco\n  path: {tmp_path}/best.onnx")
    path = write(tmp_path, text)
    result = check(path, "--no-sources")
    assert result.exit_code == 1, result.output
    assert (f"{path}:{line_with(text, 'path:')}: detector.path: model 'nanodet-m-416-coco': "
            f"missing weights {tmp_path}/best.onnx") in result.output


def test_check_config_unreachable_rtsp_fails_fast_and_no_sources_skips_it(
        tmp_path: Path) -> None:
    """Nothing listens on the port: the refusal is reported at once (well inside the
    camera's 5 s timeout), with the password redacted; ``--no-sources`` does not open it."""
    source = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/stream1"
    text = CHECKED.format(source=source)
    path = write(tmp_path, text)
    started = time.monotonic()
    result = check(path)
    took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert f"{path}:{line_with(text, 'source:')}: cameras[0].source: camera cam1:" in result.output
    assert "Connection refused" in result.output and "s3cret" not in result.output
    assert took < 5, took
    skipped = check(path, "--no-sources")
    assert skipped.exit_code == 0 and "sources not opened" in skipped.output, skipped.output


def test_check_config_missing_file_source_fails(tmp_path: Path) -> None:
    path = write(tmp_path, CHECKED.format(source="gone.mp4"))
    result = check(path)
    assert result.exit_code == 1 and "file not found" in result.output, result.output


def test_check_config_rule_the_model_can_never_feed_fails_on_its_line(tmp_path: Path) -> None:
    """Own weights mapping only bicycles: a doorway_trading rule (goods, people) is dead."""
    text = CHECKED.format(source=shared(VTEST)).replace(
        "model: nanodet-m-416-coco",
        "model: nanodet-m-416-coco\n  class_map: {bicycle: two_wheeler}").replace(
        "rules: [{type: illegal_parking}]",
        "rules:\n          - type: illegal_parking\n          - type: doorway_trading")
    path = write(tmp_path, text)
    result = check(path, "--no-sources")
    assert result.exit_code == 1, result.output
    assert (f"{path}:{line_with(text, 'type: doorway_trading')}: "
            "cameras[0].zones[0].rules[1].classes: rule doorway_trading watches") in result.output
    assert "can never alert" in result.output and "illegal_parking" not in result.output

"""``gridwatch sim replay``: recorded files served as N live cameras that OpenCV (the edge's
fallback decoder) reads like any IP camera, with offsets, speed, no-loop and an edge YAML."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from click.testing import CliRunner

from edge.config import load_config
from gridwatch.cli import cli
from simulators.replay import CameraReplay, edge_config
from tests import plain_http
from tests.conftest import shared
from tests.waiting import wait_until

VN = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
BJ = "media/cn_beijing_uadetrac_intersection_8s.mp4"


def _read(url: str, n: int = 3) -> list[np.ndarray]:
    cap = cv2.VideoCapture(url)
    frames = []
    try:
        deadline = time.monotonic() + 20
        while len(frames) < n and time.monotonic() < deadline:
            ok, image = cap.read()
            if ok:
                frames.append(image)
    finally:
        cap.release()
    return frames


def test_mjpeg_cameras_are_readable_and_offset() -> None:
    files = [shared(VN), shared(BJ)]
    with CameraReplay(files, 3, offset_s=2.5, speed=2.0, max_frames=200) as replay:
        urls = [c.url for c in replay.cameras]
        assert len(set(urls)) == 3
        assert [c.file for c in replay.cameras] == [files[0], files[1], files[0]]
        first = _read(urls[0])
        third = _read(urls[2])  # same file as camera 1, 5 s further on
        assert len(first) == 3 and len(third) == 3
        assert first[0].shape == third[0].shape
        diff = np.abs(first[0].astype(int) - third[0].astype(int)).mean()
        assert diff > 2, "an offset camera shows another moment of the clip"
        assert len(_read(urls[1], 1)) == 1
        assert replay.cameras[0].frames_sent >= 3
        assert "3 cameras" in replay.status_line()


def test_no_loop_goes_off_the_air(tmp_path: Path) -> None:
    with CameraReplay([shared(VN)], 1, speed=20.0, loop=False, max_frames=40) as replay:
        assert _read(replay.cameras[0].url, 1)
        wait_until(lambda: replay.done, 10, "the replay to reach the clip's end")
        assert plain_http.get(replay.cameras[0].url).status_code == 404


def test_edge_config_for_the_replay_is_valid(tmp_path: Path) -> None:
    with CameraReplay([shared(VN), shared(BJ)], 2, max_frames=10) as replay:
        doc = edge_config(replay, broker_port=1884)
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path)
    assert [c.source for c in config.cameras] == [c.url for c in replay.cameras]
    vn = config.cameras[0]
    assert {z.id for z in vn.zones} == {"pavement-east", "shopfront-east"}  # the demo's zones


def test_cli_prints_urls_and_writes_edge_config(tmp_path: Path) -> None:
    out = tmp_path / "edge.yaml"
    result = CliRunner().invoke(cli, ["sim", "replay", str(shared(VN)), "--cameras", "2",
                                      "--offset-s", "1", "--duration", "1",
                                      "--edge-config", str(out), "--broker", "127.0.0.1:1999"])
    assert result.exit_code == 0, result.output
    assert "cam-replay-02  http://127.0.0.1:" in result.output
    assert load_config(out).broker.port == 1999


def test_rtsp_cameras_on_one_port() -> None:
    with CameraReplay([shared(VN), shared(BJ)], 2, protocol="rtsp") as replay:
        assert replay.cameras[1].url.endswith("/cam2")
        frames = _read(replay.cameras[1].url, 2)
    assert len(frames) == 2 and frames[0].shape[0] > 100


def test_rtsp_server_single_file_form_still_works() -> None:
    from simulators.local_services import free_port

    port = free_port()
    proc = subprocess.Popen(["/usr/bin/python3", "simulators/rtsp_server.py", str(shared(VN)),
                             "--port", str(port)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"READY rtsp://127.0.0.1:{port}/cam"
    finally:
        proc.terminate()
        proc.wait(5)

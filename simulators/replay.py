"""Recorded video files served as N live cameras (``gridwatch sim replay``).

A few files become many cameras: camera *i* plays file *i mod len(files)*, started
``i × offset_s`` seconds into it, so neighbours do not show the same frame at once. Each camera
is *live*: its position runs on the wall clock at ``speed`` × the file's own frame rate whether
anyone watches or not, and every viewer sees the same frame (as with a real camera); without
``loop`` the camera goes off the air after one pass.

MJPEG (default): one HTTP server, ``http://127.0.0.1:PORT/cam/<n>.mjpg`` per camera, frames
decoded once with OpenCV (``mjpeg_server.load_jpegs``). RTSP: GStreamer's RTSP server from
Debian (``rtsp_server.py`` under the system Python), ``rtsp://127.0.0.1:PORT/cam<n>``, MP4
(H.264) files only, sent as they are at real-time pace (no offsets, no speed-up).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2

from simulators.mjpeg_server import BOUNDARY, load_jpegs

log = logging.getLogger(__name__)
RTSP_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class ReplayCamera:
    id: str
    file: Path
    url: str
    offset_s: float
    frames: list[bytes] | None = None
    fps: float = 10.0
    frames_sent: int = 0
    clients: int = 0


def file_fps(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return fps if 1 <= fps <= 120 else 10.0


class CameraReplay:
    """Serves ``files`` as ``cameras`` live cameras; ``start()``, then ``cameras[i].url``."""

    def __init__(self, files: list[Path], cameras: int, *, offset_s: float = 0.0,
                 speed: float = 1.0, loop: bool = True, protocol: str = "mjpeg",
                 port: int = 0, max_frames: int = 1500, max_width: int = 1280,
                 id_prefix: str = "cam-replay-") -> None:
        if not files or cameras < 1:
            raise ValueError("need at least one file and one camera")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        for f in files:
            if not Path(f).is_file():
                raise FileNotFoundError(f"no video file {f}")
        if protocol == "rtsp" and (speed != 1.0 or offset_s):
            raise ValueError("rtsp replays at real-time pace from each file's start: "
                             "--speed and --offset-s are for mjpeg")
        if protocol not in ("mjpeg", "rtsp"):
            raise ValueError(f"unknown protocol {protocol!r}")
        self.files = [Path(f) for f in files]
        self.protocol = protocol
        self.speed = speed
        self.loop = loop
        self._port = port
        self._max_frames, self._max_width = max_frames, max_width
        self._stopping = threading.Event()
        self._t0 = 0.0
        self._httpd: ThreadingHTTPServer | None = None
        self._proc: subprocess.Popen[str] | None = None
        self.cameras = [ReplayCamera(f"{id_prefix}{i + 1:02d}", self.files[i % len(self.files)],
                                     "", i * offset_s) for i in range(cameras)]

    # --- mjpeg ------------------------------------------------------------------------------

    def _position(self, cam: ReplayCamera) -> int | None:
        """The frame the live camera shows now; None once a non-looping camera is done."""
        assert cam.frames is not None
        n = int((cam.offset_s + (time.monotonic() - self._t0) * self.speed) * cam.fps)
        if n >= len(cam.frames) and not self.loop:
            return None
        return n % len(cam.frames)

    def _stream(self, handler: BaseHTTPRequestHandler, cam: ReplayCamera) -> None:
        assert cam.frames is not None
        period = 1.0 / (cam.fps * self.speed)
        cam.clients += 1
        last = -1
        try:
            while not self._stopping.is_set():
                pos = self._position(cam)
                if pos is None:
                    break
                if pos != last:
                    jpeg = cam.frames[pos]
                    handler.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    handler.wfile.flush()
                    cam.frames_sent += 1
                    last = pos
                self._stopping.wait(period / 2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            cam.clients -= 1

    def _start_mjpeg(self) -> None:
        cache: dict[Path, tuple[list[bytes], float]] = {}
        for f in self.files:
            if f not in cache:
                cache[f] = (load_jpegs(f, max_frames=self._max_frames,
                                       max_width=self._max_width), file_fps(f))
        by_path: dict[str, ReplayCamera] = {}
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cam = by_path.get(self.path.split("?")[0])
                if cam is None or replay._position(cam) is None:
                    self.send_error(404, "no such camera (or its recording is over)")
                    return
                self.send_response(200)
                self.send_header("Content-Type",
                                 f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                replay._stream(self, cam)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("replay %s", fmt % args)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        port = self._httpd.server_address[1]
        for i, cam in enumerate(self.cameras):
            cam.frames, cam.fps = cache[cam.file]
            path = f"/cam/{i + 1}.mjpg"
            cam.url = f"http://127.0.0.1:{port}{path}"
            by_path[path] = cam
        threading.Thread(target=self._httpd.serve_forever, daemon=True,
                         name=f"replay-{port}").start()

    # --- rtsp -------------------------------------------------------------------------------

    def _start_rtsp(self) -> None:
        from simulators.local_services import free_port

        port = self._port or free_port()
        mounts = []
        for i, cam in enumerate(self.cameras):
            cam.url = f"rtsp://127.0.0.1:{port}/cam{i + 1}"
            mounts += ["--mount", f"/cam{i + 1}={cam.file.resolve()}"]
        self._proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SCRIPT), "--port", str(port),
                                       *mounts], stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"the RTSP server did not start: {line.strip() or 'no output'}")

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> CameraReplay:
        if self.protocol == "mjpeg":
            self._start_mjpeg()
        else:
            self._start_rtsp()
        self._t0 = time.monotonic()
        return self

    @property
    def done(self) -> bool:
        """Every (non-looping) camera has played its file through."""
        if self.loop or self.protocol != "mjpeg":
            return False
        return all(self._position(c) is None for c in self.cameras)

    def status_line(self) -> str:
        t = time.monotonic() - self._t0
        if self.protocol == "rtsp":
            return f"{t:7.1f}s  {len(self.cameras)} RTSP cameras on the air"
        viewers = sum(c.clients for c in self.cameras)
        frames = sum(c.frames_sent for c in self.cameras)
        return (f"{t:7.1f}s  {len(self.cameras)} cameras  {viewers} viewers  "
                f"{frames} frames sent  ({frames / t if t else 0:.0f}/s)")

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> CameraReplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def edge_config(replay: CameraReplay, broker_host: str = "127.0.0.1", broker_port: int = 1883,
                edge_id: str = "edge-replay", zones_from_demo: bool = True) -> dict[str, Any]:
    """An edge YAML document for the replayed cameras. With ``zones_from_demo``, a camera
    replaying one of the demo's clips gets that clip's zones (``simulators/demo.py``); other
    cameras get one whole-picture ``illegal_parking`` zone."""
    from simulators.demo import DEMO_CAMERAS, DEMO_DETECTOR

    demo_zones = {Path(c["media"]).name: c for c in DEMO_CAMERAS}
    cameras = []
    for cam in replay.cameras:
        demo = demo_zones.get(cam.file.name) if zones_from_demo else None
        zones = demo["zones"] if demo else [
            {"id": "frame", "dwell_s": 10, "clear_s": 10,
             "polygon": [[0.0, 0.3], [1.0, 0.3], [1.0, 1.0], [0.0, 1.0]],
             "rules": [{"type": "illegal_parking"}]}]
        cameras.append({"id": cam.id, "name": f"replay of {cam.file.name}", "source": cam.url,
                        "sample_fps": demo["sample_fps"] if demo else 2, "zones": zones})
    return {"edge_id": edge_id, "broker": {"host": broker_host, "port": broker_port},
            "detector": DEMO_DETECTOR, "cameras": cameras}


def print_progress_until(replay: CameraReplay, duration: float = 0.0) -> None:
    """A one-line progress display, refreshed every second, until Ctrl-C / ``duration`` / the
    end of a non-looping replay."""
    t0 = time.monotonic()
    tty = sys.stdout.isatty()
    try:
        while not replay.done and not (duration and time.monotonic() - t0 >= duration):
            line = replay.status_line()
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            time.sleep(1.0)
    finally:
        if tty:
            print(flush=True)

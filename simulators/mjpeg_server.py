"""A real clip served as a live HTTP MJPEG camera (``multipart/x-mixed-replace``), the way
cheap IP cameras serve ``/video.mjpg``: for tests, and for replaying files as live cameras.

    server = MjpegServer(Path("clip.mp4"), fps=10).start()
    ... camera source: server.url ...
    server.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

log = logging.getLogger(__name__)

BOUNDARY = "gridwatchframe"


def load_jpegs(source: Path, *, max_frames: int = 250, every: int = 1,
               max_width: int = 1280, quality: int = 80) -> list[bytes]:
    """Up to ``max_frames`` JPEGs from a video (every ``every``-th frame) or a still image."""
    cap = cv2.VideoCapture(str(source))
    jpegs: list[bytes] = []
    index = 0
    try:
        while len(jpegs) < max_frames:
            ok, image = cap.read()
            if not ok:
                break
            index += 1
            if (index - 1) % every:
                continue
            if image.shape[1] > max_width:
                scale = max_width / image.shape[1]
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                jpegs.append(buf.tobytes())
    finally:
        cap.release()
    if not jpegs:
        raise OSError(f"no frames in {source}")
    return jpegs


class MjpegServer:
    """Serves ``jpegs`` (or the frames of ``source``) in a loop at ``fps`` to every client of
    any path on 127.0.0.1:``port`` (0 = a free one). ``freeze=True`` repeats the first frame
    forever: a camera whose picture is stuck. ``stop()`` ends every stream."""

    def __init__(self, source: Path | None = None, *, fps: float = 10.0, port: int = 0,
                 jpegs: list[bytes] | None = None, freeze: bool = False,
                 max_frames: int = 250) -> None:
        if jpegs is None:
            if source is None:
                raise ValueError("give a source file or jpegs")
            jpegs = load_jpegs(source, max_frames=max_frames)
        self.jpegs = jpegs[:1] if freeze else jpegs
        self.fps = fps
        self._stopping = threading.Event()
        self.frames_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type",
                                 f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                server._stream(self)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("mjpeg %s", fmt % args)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name=f"mjpeg-{self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        period = 1.0 / self.fps
        due = time.monotonic()
        n = 0
        try:
            while not self._stopping.is_set():
                jpeg = self.jpegs[n % len(self.jpegs)]
                handler.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                handler.wfile.flush()
                n += 1
                self.frames_sent += 1
                due += period
                self._stopping.wait(max(0.0, due - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

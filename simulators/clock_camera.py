"""A live H.264 camera that burns the wall clock into its picture: for live view's tests and
its glass-to-glass latency bench (bench/bench_live.py).

It serves an endless MPEG-TS over HTTP (``http://127.0.0.1:<port>/live.ts``, which FFmpeg and
so the edge read as a live stream), encoded as it goes with libx264 (``zerolatency``, no
B-frames, a key frame every ``gop_s``). Each frame shows a bar that moves (so frames differ) and
the time it was made as a row of black and white blocks (``CLOCK_BITS`` bits of milliseconds),
which ``read_clock`` reads back from a screenshot without OCR.

    camera = ClockCamera().start()
    ... camera source: camera.url ...
    camera.stop()
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Bits of the millisecond clock drawn: 2^32 ms is 49 days, so a reading is unambiguous.
CLOCK_BITS = 32
#: The clock row's height, as a share of the picture's (blocks are that tall and
#: width / CLOCK_BITS wide: big enough to survive scaling and compression).
ROW = 0.25


def draw_clock(image: np.ndarray, ms: int) -> None:
    """Write ``ms`` (mod 2^CLOCK_BITS) into the top row of ``image`` (RGB), most significant
    bit left: white is 1, black is 0."""
    height, width = image.shape[:2]
    row = max(2, int(height * ROW))
    step = width / CLOCK_BITS
    value = ms % (1 << CLOCK_BITS)
    for bit in range(CLOCK_BITS):
        on = (value >> (CLOCK_BITS - 1 - bit)) & 1
        image[:row, int(bit * step):int((bit + 1) * step)] = 255 if on else 0


def read_clock(image: np.ndarray) -> int | None:
    """The milliseconds drawn by ``draw_clock`` into ``image`` (RGB or BGR, any scale: the
    picture as the page shows it, cropped to the video), or None when the row is not there
    (blocks neither clearly white nor clearly black)."""
    height, width = image.shape[:2]
    row = max(2, int(height * ROW))
    step = width / CLOCK_BITS
    grey = image[:row].mean(axis=2) if image.ndim == 3 else image[:row]
    value = 0
    for bit in range(CLOCK_BITS):
        x0, x1 = int(bit * step + step / 4), int((bit + 1) * step - step / 4)
        level = float(grey[row // 4:row * 3 // 4, x0:max(x1, x0 + 1)].mean())
        if 60 < level < 195:
            return None
        value = (value << 1) | (level >= 128)
    return value


def now_ms() -> int:
    return int(time.time() * 1000) % (1 << CLOCK_BITS)


class ClockCamera:
    """Serves the clock picture live to every HTTP client on 127.0.0.1:``port`` (0 = a free
    one), each with its own encoder, until ``stop()``."""

    def __init__(self, *, port: int = 0, fps: int = 25, width: int = 320, height: int = 180,
                 gop_s: float = 1.0) -> None:
        self.fps, self.width, self.height, self.gop_s = fps, width, height, gop_s
        self._stop = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    camera._serve(self.wfile)  # until the client goes

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="clock-camera")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/live.ts"

    def start(self) -> ClockCamera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, out: Any) -> None:
        import av

        container = av.open(out, "w", format="mpegts")
        stream = container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, self.fps)
        stream.codec_context.gop_size = max(1, round(self.fps * self.gop_s))
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency",
                                        "bf": "0"}
        started = time.monotonic()
        index = 0
        try:
            while not self._stop.is_set():
                due = started + index / self.fps
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                image = np.full((self.height, self.width, 3), 96, np.uint8)
                x = (index * 4) % self.width
                image[int(self.height * ROW) + 4:, x:x + 12] = (255, 64, 0)
                draw_clock(image, now_ms())
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
                out.flush()
                index += 1
        finally:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - the client went away mid-packet
                log.debug("clock camera client closed")

"""The whole edge, end to end: analysed frames/s of ``edge.runner.run`` (capture threads with
real decoding and sampling -> inference -> rules -> evidence), and cameras per box at 0.5 fps.

    .venv/bin/python -m bench edge      (env BENCH_EDGE_SECONDS, BENCH_EDGE_CAMERAS)

K file cameras sample at 0.5 fps of video time and replay at speed 0: each analysed frame
costs the decoding a real 0.5 fps camera costs, and the cameras together offer more frames
than the box can analyse, so the edge runs saturated and analysed frames/s is its capacity;
cameras per box = frames/s / 0.5. The clip is what a camera sends: the Vietnamese street
re-encoded as 720p 25 fps H.264 with a key frame every 2 s (bench_decode.make_clip), so the
edge's decoder skips whole GOPs as it would live. (The shared clips as they are have one key
frame per 6-8 s: every sample then decodes ~50 frames, a decode cost no tuned camera has.)
Counted over a window after a warm-up (worker start, model load, first frames); CPU = process
time of the edge and its detector processes over the whole run, in % of one core (200 % = both
cores).
Variants: NanoDet-m 416 in-process with 1 and 2 threads, 2 and 3 processes x 1 thread, and
2 processes with the cameras' zone crops on (``crops.mode`` zones / tiles over the bench's zone,
the lower 70 % of the frame: 3 windows + the whole frame, 8 tiles + the whole frame). With
``BENCH_EDGE_RUNS`` = N every variant runs N times, interleaved (run 1 of each, then run 2 ...),
and the table gives the median and the worst run.
"""

from __future__ import annotations

import os
import pickle
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

import edge.runner
from bench.bench_decode import make_clip
from edge.config import EdgeConfig
from edge.runner import run
from wire.paths import shared_file

CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
SECONDS = float(os.environ.get("BENCH_EDGE_SECONDS", "40"))
WARMUP_S = 8.0
CAMERAS = int(os.environ.get("BENCH_EDGE_CAMERAS", "8"))
CAMERA_FPS = 0.5
VARIANTS = [("1 proc x 1 thread", 1, 1, "off"), ("1 proc x 2 threads", 1, 2, "off"),
            ("2 procs x 1 thread", 2, 1, "off"), ("3 procs x 1 thread", 3, 1, "off"),
            ("2 procs, crops zones", 2, 1, "zones"), ("2 procs, crops tiles", 2, 1, "tiles")]
RUNS = int(os.environ.get("BENCH_EDGE_RUNS", "1"))
ONLY = os.environ.get("BENCH_EDGE_VARIANTS")  # e.g. "3,4": numbers from the list
if ONLY:
    VARIANTS = [VARIANTS[int(i) - 1] for i in ONLY.split(",")]
ZONES = [{"id": "all", "polygon": [[0, 0.3], [1, 0.3], [1, 1], [0, 1]], "dwell_s": 10,
          "clear_s": 5, "rules": [{"type": "illegal_parking"}]}]


def _config(clip: Path, processes: int, threads: int, crops: str) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "edge_id": "bench-edge",
        "detector": {"threads": threads, "processes": processes},
        "cameras": [{"id": f"cam{i}", "source": str(clip),
                     "loop": True, "sample_fps": CAMERA_FPS, "zones": ZONES,
                     "crops": {"mode": crops}}
                    for i in range(CAMERAS)],
    })


def _cpu_seconds() -> float:
    """This process plus its finished children (the detector workers, joined at shutdown)."""
    return sum(psutil.Process().cpu_times()[:4])


def _transfer_cost() -> str:
    """What sending one 720p frame to a worker costs, full size vs shrunk to 416x416."""
    import cv2

    from edge.detect.pool import shrink_for_detector

    cap = cv2.VideoCapture(str(shared_file(CLIP)))
    frame = cap.read()[1]
    cap.release()

    def ms(fn: Any, n: int = 50) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) * 1000 / n

    full = ms(lambda: pickle.loads(pickle.dumps(frame, protocol=5)))
    small = ms(lambda: pickle.loads(pickle.dumps(shrink_for_detector(frame, (416, 416)),
                                                 protocol=5)))
    return (f"{frame.shape[1]}x{frame.shape[0]} frame pickled+unpickled {full:.2f} ms "
            f"({frame.nbytes / 1e6:.1f} MB); resized to 416x416 + pickled+unpickled "
            f"{small:.2f} ms (0.5 MB)")


def _measure(clip: Path, processes: int, threads: int, crops: str) -> dict[str, Any]:
    handled: list[float] = []
    original = edge.runner._handle

    def counting(*args: Any, **kwargs: Any) -> int:
        handled.append(time.monotonic())
        return original(*args, **kwargs)

    stop = threading.Event()
    base = _cpu_seconds()
    edge.runner._handle = counting
    timer = threading.Timer(SECONDS, stop.set)
    started = time.monotonic()
    timer.start()
    try:
        stats = run(_config(clip, processes, threads, crops), speed=0, mqtt=False, stop_event=stop)
    finally:
        edge.runner._handle = original
        timer.cancel()
        stop.set()
    wall = time.monotonic() - started
    cpu = _cpu_seconds() - base
    window = [t for t in handled if t >= started + WARMUP_S]
    fps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0
    return {"fps": fps, "cpu": 100 * cpu / wall, "frames": stats.frames_analysed,
            "alerts": stats.alerts_sent, "dropped": stats.frames_dropped}


def main() -> None:
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs; {CAMERAS} file "
          f"cameras at {CAMERA_FPS} fps sampling, looped, speed 0; {SECONDS:.0f} s per variant, "
          f"first {WARMUP_S:.0f} s not counted")
    print(_transfer_cost())
    with tempfile.TemporaryDirectory(prefix="gridwatch-bench-") as tmp:
        clip = Path(tmp) / "camera-720p-gop2s.mp4"
        make_clip(shared_file(CLIP), clip, (1280, 720))
        print(f"load average after encoding the clip: {os.getloadavg()}")
        print(f"{'run':<4} {'variant':<22} {'frames/s':>9} {'CPU %':>7} {'cameras':>8} "
              f"{'frames':>7} {'alerts':>7}")
        fps: dict[str, list[float]] = {name: [] for name, *_ in VARIANTS}
        for i in range(RUNS):
            for name, processes, threads, crops in VARIANTS:
                r = _measure(clip, processes, threads, crops)
                fps[name].append(r["fps"])
                print(f"{i + 1:<4} {name:<22} {r['fps']:>9.1f} {r['cpu']:>7.0f} "
                      f"{r['fps'] / CAMERA_FPS:>8.0f} {r['frames']:>7} {r['alerts']:>7}",
                      flush=True)
        if RUNS > 1:
            print(f"{'variant':<22} {'median frames/s':>16} {'worst':>7} {'cameras (median)':>17}")
            for name, values in fps.items():
                median = statistics.median(values)
                print(f"{name:<22} {median:>16.1f} {min(values):>7.1f} "
                      f"{median / CAMERA_FPS:>17.0f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

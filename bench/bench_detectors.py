"""Detector backends side by side on real street frames: latency per frame, analysed frames/s and
how many cameras one edge box serves at 0.5 analysed frames/s each.

    .venv/bin/python -m bench detectors            (env BENCH_FRAMES=N to change the count)

Variants: NanoDet ONNX (1 thread, 2 threads, 2 processes x 1 thread), and ultralytics yolo11n
as PyTorch, ONNX Runtime and OpenVINO at 640 px, one frame per call and batched. The YOLO
weights are untrained (built from yolo11n.yaml, nothing downloads here): the network's compute
is the same as trained yolo11n.pt; only NMS sees fewer candidate boxes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from wire.paths import shared_file

CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
FRAMES = int(os.environ.get("BENCH_FRAMES", "40"))
WARMUP = 3
CAMERA_FPS = 0.5  # analysed frames per second each camera needs


def _frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(shared_file(CLIP)))
    out: list[np.ndarray] = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        out.append(frame)
        for _ in range(4):  # spread over the clip
            cap.grab()
    cap.release()
    return out


def _time_calls(fn, batches: list[list[np.ndarray]]) -> tuple[list[float], float]:
    """Per-frame latencies in ms (a batch's call time counts for each of its frames) and the
    wall time of the whole run."""
    for batch in batches[:WARMUP]:
        fn(batch)
    latencies: list[float] = []
    _time_calls.started = time.time()  # wall-clock start, for spans across processes
    start = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        fn(batch)
        latencies += [(time.perf_counter() - t0) * 1000] * len(batch)
    return latencies, time.perf_counter() - start


def _row(name: str, latencies: list[float], frames: int, wall: float, note: str = "") -> str:
    fps = frames / wall
    return (f"{name:<44} {np.percentile(latencies, 50):>7.1f} {np.percentile(latencies, 95):>7.1f}"
            f" {fps:>7.1f} {fps / CAMERA_FPS:>8.0f}  {note}")


def _nanodet_worker(args: tuple[int, int]) -> tuple[list[float], float, float]:
    threads, n = args
    from edge.detect import load_detector

    det = load_detector("nanodet-m-416-coco", threads=threads)
    frames = _frames(n)
    lat, _ = _time_calls(lambda b: det.detect(b[0]), [[f] for f in frames])
    # wall start/end, so the parent can take the span over both workers
    return lat, _time_calls.started, time.time()


def _bench_nanodet(frames: list[np.ndarray]) -> list[str]:
    from edge.detect import load_detector

    rows = []
    for threads in (1, 2):
        det = load_detector("nanodet-m-416-coco", threads=threads)
        lat, wall = _time_calls(lambda b, d=det: d.detect(b[0]), [[f] for f in frames])
        rows.append(_row(f"nanodet-m-416 onnxruntime 1 proc x {threads} thr", lat, len(frames),
                         wall))
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_nanodet_worker, [(1, len(frames))] * 2)
    lat = results[0][0] + results[1][0]
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    rows.append(_row("nanodet-m-416 onnxruntime 2 proc x 1 thr", lat, len(lat), wall,
                     "total of both processes"))
    return rows


def _untrained_yolo(folder: Path) -> dict[str, Path]:
    """yolo11n from its YAML with COCO class names, saved as .pt and exported (640 px)."""
    from edge.detect.ultralytics_yolo import import_ultralytics

    import_ultralytics()
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    yolo = YOLO("yolo11n.yaml", task="detect")
    yolo.model.names = names
    pt = folder / "yolo11n-untrained.pt"
    torch.save({"model": yolo.model.half(), "train_args": {"imgsz": 640}, "epoch": -1}, pt)
    paths = {"pytorch": pt}
    for fmt in ("onnx", "openvino"):
        try:
            paths[fmt] = Path(YOLO(str(pt), task="detect").export(
                format=fmt, imgsz=640, dynamic=False, device="cpu", verbose=False,
                **({"simplify": False} if fmt == "onnx" else {})))
        except Exception as exc:  # noqa: BLE001 - openvino may be absent; say so, go on
            print(f"  (skipping {fmt}: {type(exc).__name__}: {exc})")
    return paths


def _bench_ultralytics(frames: list[np.ndarray]) -> list[str]:
    from edge.detect import load_detector

    rows = []
    with tempfile.TemporaryDirectory(prefix="gridwatch-bench-") as tmp:
        paths = _untrained_yolo(Path(tmp))
        for runtime, path in paths.items():
            det = load_detector("yolo11n", path=path, threads=2, imgsz=640)
            lat, wall = _time_calls(lambda b, d=det: d.detect(b[0]), [[f] for f in frames])
            rows.append(_row(f"yolo11n 640 ultralytics {runtime}", lat, len(frames), wall,
                             "2 threads" if runtime == "pytorch" else "runtime default threads"))
        for batch in (2, 4):
            det = load_detector("yolo11n", path=paths["pytorch"], threads=2, imgsz=640,
                                max_batch=batch)
            batches = [frames[i:i + batch] for i in range(0, len(frames) - batch + 1, batch)]
            lat, wall = _time_calls(det.detect_batch, batches)
            rows.append(_row(f"yolo11n 640 ultralytics pytorch batch {batch}", lat,
                             len(batches) * batch, wall, "latency = whole batch call"))
    return rows


def main() -> None:
    frames = _frames(FRAMES)
    h, w = frames[0].shape[:2]
    print(f"{FRAMES} frames {w}x{h} from {CLIP}; {os.cpu_count()} CPUs; "
          f"cameras/box = fps / {CAMERA_FPS}")
    print(f"{'variant':<44} {'p50 ms':>7} {'p95 ms':>7} {'fps':>7} {'cameras':>8}")
    for bench in (_bench_nanodet, _bench_ultralytics):
        for row in bench(frames):
            print(row, flush=True)


if __name__ == "__main__":
    main()

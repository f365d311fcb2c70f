"""Live view: what a stream costs the edge, what a viewer costs the center, and how far behind
the street the picture in the browser is (docs/performance.md, "Live view").

One run: a private PostgreSQL and Mosquitto, the real center (subprocess), the real edge
(``gridwatch edge run``, subprocess, fake detector at 1 frame/s so the detector does not drown
the figures) reading a live H.264 camera (``simulators.clock_camera``: 1280x720, 25 fps, a key
frame every second, the wall clock drawn into every frame). Measured, ``RUNS`` times each:

- edge CPU with no stream, then with one stream (its difference: the stream's cost);
- center CPU and bytes served with 1 and with ``VIEWERS`` viewers (helper processes that do
  what hls.js does: the playlist every second, each new segment once, the keep-alive ask
  every 8 s);
- glass to glass: Chromium plays the camera in the engineer view; each screenshot of the video
  is read back (``read_clock``) and compared with the clock when it was taken.

Per stream on real street clips, in process (the segmenter and the chunk messages, remux and
the transcoding fallback): ``python -m bench.bench_live per-stream``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.harness import (
    helper_cli,
    serve_center,
    serve_options,
    services,
    spawn,
    wait_for,
    write_results,
)

RUNS = 3
MEASURE_S = 20.0
VIEWERS = 8
LATENCY_SAMPLES = 15
CAMERA = "cam-vn-01"
EDGE = "edge-demo"
BENCH_SECRET = secrets.token_urlsafe(48)
#: The center's live settings for the run: a stream nobody watches stops within seconds, so
#: every latency run starts a stream of its own.
LIVE_ENV = {"GRIDWATCH_LIVE__IDLE_S": "4", "GRIDWATCH_LIVE__KEEPALIVE_S": "2",
            "GRIDWATCH_LIVE__EDGE_TTL_S": "6", "GRIDWATCH_LIVE__VIEWERS_PER_CAMERA": "64"}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- helper processes ---------------------------------------------------------------------------

async def _viewers(args: argparse.Namespace) -> None:
    """``--n`` viewers of each camera of ``--camera`` (comma-separated), each as hls.js plays
    a live playlist; on SIGTERM, the bytes and segments they got into ``--out``."""
    import httpx

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    got = {"bytes": 0, "segments": 0, "errors": 0}
    auth = {"Authorization": f"Bearer {args.token}"}

    async def one(client: httpx.AsyncClient, camera: str) -> None:
        seen: set[str] = set()
        playlist, asked = None, 0.0
        while not stop.is_set():
            if time.monotonic() - asked > 8 or playlist is None:
                r = await client.post(f"/api/v1/cameras/{camera}/live", headers=auth)
                asked = time.monotonic()
                if r.status_code != 200 or r.json()["state"] != "playing":
                    playlist = None
                    await asyncio.sleep(1)
                    continue
                playlist = r.json()["playlist"]
            r = await client.get(playlist)
            if r.status_code != 200:
                got["errors"] += 1
                playlist = None
                continue
            for url in [u for u in r.text.splitlines() if u and not u.startswith("#")][-2:]:
                key = url.split("?")[0]
                if key in seen:
                    continue
                seen.add(key)
                seg = await client.get(url)
                if seg.status_code == 200:
                    got["bytes"] += len(seg.content)
                    got["segments"] += 1
                else:
                    got["errors"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)  # hls.js reloads every target

    async with httpx.AsyncClient(base_url=args.url, timeout=10) as client:
        await asyncio.gather(*(one(client, camera) for camera in args.camera.split(",")
                               for _ in range(args.n)))
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(got))


def _segment_cost(media: str, loops: int,
                  max_key_s: float | None = None) -> tuple[float, float, int, bool]:
    """The edge's work for one stream of ``media`` (looped): segmenting and the chunk
    messages, without the demuxing that runs anyway; ``max_key_s``: the edge's
    ``live.max_keyframe_interval_s`` (None: remux whatever the key-frame spacing).
    (CPU s, video s, bytes, transcoded)."""
    import av

    from edge.capture.packets import Packet, StreamInfo
    from edge.live.segmenter import Segmenter
    from tests.conftest import shared
    from wire.protocol import MAX_LIVE_CHUNK_BYTES, LiveChunk

    sent = 0

    def send(segment: Any) -> None:
        nonlocal sent
        data = segment.data
        for part in range(0, len(data), MAX_LIVE_CHUNK_BYTES):
            sent += len(LiveChunk(
                edge_id="e", camera_id="c", stream_id="bench-stream", seq=segment.seq,
                part=part // MAX_LIVE_CHUNK_BYTES,
                parts=-(-len(data) // MAX_LIVE_CHUNK_BYTES), duration_s=segment.duration_s,
                data=data[part:part + MAX_LIVE_CHUNK_BYTES]).model_dump_json())

    with av.open(str(shared(media))) as container:
        stream = container.streams.video[0]
        info = StreamInfo.from_stream(stream)
        tb = stream.time_base
        raw = [(bytes(p), float(p.pts * tb), float(p.dts * tb), p.is_keyframe,
                float(p.duration * tb) if p.duration else 0.0)
               for p in container.demux(stream) if p.size]
    length = max(pts + d for _, pts, _, _, d in raw)
    packets = [Packet(pts + i * length, dts + i * length, data, key, d)
               for i in range(loops) for data, pts, dts, key, d in raw]
    segmenter = Segmenter(send, max_key_s=max_key_s)
    t0 = time.process_time()
    for packet in packets:
        segmenter.add(info, packet)
    return time.process_time() - t0, length * loops, sent, segmenter.transcoded


#: The demo's street clips: one key frame per loop (Beijing 960x540, 8.3 s apart; Vietnam
#: 1280x720, 6.4 s), so the edge's default ``live.max_keyframe_interval_s`` transcodes them.
DEMO_CLIPS = (("media/cn_beijing_uadetrac_intersection_8s.mp4", 8),
              ("media/vn_truccat_intersection_pavement_vendor_6s.mp4", 10))
#: The edge's default ``live.max_keyframe_interval_s``.
DEFAULT_MAX_KEY_S = 3.0


def _per_stream(_: argparse.Namespace) -> None:
    """Edge CPU per stream on the shared street clips (H.264, 960x540 and 1280x720 at
    30 fps): remuxed (``live.max_keyframe_interval_s`` off), transcoded for their long
    key-frame spacing (the default), and the codec fallback (vtest.avi, MPEG-4 part 2,
    768x576, 10 fps)."""
    cases: list[tuple[str, int, float | None]] = [
        (media, loops, None) for media, loops in DEMO_CLIPS]
    cases += [(media, 3, DEFAULT_MAX_KEY_S) for media, _loops in DEMO_CLIPS]
    cases += [("media/vtest.avi", 1, None)]
    for media, loops, max_key_s in cases:
        costs = []
        for _run in range(RUNS):
            cpu, video_s, sent, transcoded = _segment_cost(media, loops, max_key_s)
            costs.append(cpu / video_s)
        print(f"{Path(media).name}: {'transcoded' if transcoded else 'remuxed'}"
              f" (max_key_s {max_key_s}), "
              f"{sent * 8 / video_s / 1e6:.2f} Mbit/s on the wire; CPU per second of video: "
              f"{_summary(costs)} (runs {', '.join(f'{c:.4f}' for c in costs)})", flush=True)


# --- the run ------------------------------------------------------------------------------------

def _get(url: str, token: str, path: str) -> Any:
    import httpx

    return httpx.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _States:
    """Counts the edge's ``playing`` (and of those, transcoded) and ``stopped`` live states on
    the broker."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        from wire.protocol import live_state_topic

        self.playing = self.stopped = self.transcoded = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(live_state_topic("+", "+"), 1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._lock:
            self.playing += b'"playing"' in msg.payload
            self.stopped += b'"stopped"' in msg.payload
            self.transcoded += b'"playing"' in msg.payload and b'"transcoded":true' in msg.payload


def _measure(procs: dict[str, subprocess.Popen[str]]) -> dict[str, float]:
    cpu0 = {k: _cpu_s(p.pid) for k, p in procs.items()}
    t0 = time.monotonic()
    time.sleep(MEASURE_S)
    wall = time.monotonic() - t0
    return {f"{k}_cpu": (_cpu_s(p.pid) - cpu0[k]) / wall for k, p in procs.items()}


def _watch(url: str, token: str, n: int, out: Path,
           cameras: str = CAMERA) -> subprocess.Popen[str]:
    """``n`` viewers (of each of ``cameras``, comma-separated), started; measuring starts once
    the first segments are out."""
    viewers = spawn("bench.bench_live", "viewers", "--url", url, "--token", token,
                    "--camera", cameras, "--n", str(n), "--out", str(out))
    time.sleep(3.0)  # the stream's start: first key frame, first segments fetched
    return viewers


def _end(viewers: subprocess.Popen[str], out: Path, wall: float) -> dict[str, float]:
    viewers.send_signal(signal.SIGTERM)
    viewers.wait(30)
    got = json.loads(out.read_text())
    return {"bytes_per_s": got["bytes"] / wall, "segments": got["segments"],
            "errors": got["errors"]}


def _latency(url: str, token: str, states: _States) -> list[list[float]]:
    """Glass to glass, ``RUNS`` runs of ``LATENCY_SAMPLES`` screenshots, each run a fresh
    stream (the previous one stopped first)."""
    import numpy as np
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    from simulators.clock_camera import CLOCK_BITS, read_clock
    from tests.browser import CHROMIUM

    runs: list[list[float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for _ in range(RUNS):
            before = states.stopped
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(f"localStorage.setItem('gridwatch.token', {json.dumps(token)})")
            page = context.new_page()
            page.goto(f"{url}/engineer?camera={CAMERA}")
            page.get_by_test_id("live-toggle").click()
            video = page.get_by_test_id("live-video")
            expect(video).to_have_attribute("data-live-state", "playing", timeout=60_000)
            wait_for(lambda v=video: float(v.evaluate("v => v.currentTime")) > 2, 30,
                     "playback")
            samples: list[float] = []
            while len(samples) < LATENCY_SAMPLES:
                t0 = time.time()
                shot = video.screenshot()
                t1 = time.time()
                shown = read_clock(np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")))
                if shown is not None:
                    now = int((t0 + t1) / 2 * 1000) % (1 << CLOCK_BITS)
                    samples.append((now - shown) % (1 << CLOCK_BITS) / 1000)
                time.sleep(0.4)
            runs.append(samples)
            print(f"  glass to glass: median {statistics.median(samples):.2f} s, worst "
                  f"{max(samples):.2f} s over {len(samples)} screenshots", flush=True)
            context.close()
            wait_for(lambda b=before: states.stopped > b, 60, "the stream to stop")
        browser.close()
    return runs


@contextlib.contextmanager
def _center_and_edge(tmp: Path, template: str, edge: dict[str, Any], env: dict[str, str]
                     ) -> Iterator[tuple[str, _States, dict[str, subprocess.Popen[str]]]]:
    """PostgreSQL, Mosquitto, the center (this file's ``serve``, with ``env`` over
    ``LIVE_ENV``) and a real edge on the fake detector with ``edge``'s cameras and settings:
    what every live benchmark runs. Yields the center's URL, the live-state counter and the
    processes ``_measure`` reads."""
    import psycopg
    import yaml

    from simulators.local_services import free_port

    with services(tmp, template) as (admin, broker):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE bench_live TEMPLATE {template}")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        center = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_live", "serve", "--dsn",
             psycopg.conninfo.make_conninfo(admin, dbname="bench_live"), "--mqtt-port",
             str(broker.port), "--port", str(port), "--secret", BENCH_SECRET],
            env={**os.environ, **LIVE_ENV, **env}, text=True)
        boxes = tmp / "boxes.yaml"
        boxes.write_text("frames: {}\n")
        config = tmp / "edge.yaml"
        config.write_text(yaml.safe_dump({
            "edge_id": EDGE, "broker": {"port": broker.port},
            "detector": {"model": "fake", "path": str(boxes)}, **edge}))
        process = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "edge", "run",
                                    "--config", str(config)], stderr=subprocess.DEVNULL,
                                   text=True)
        try:
            wait_for(lambda: _healthy(url), 60, "center start", every=0.2)
            yield url, _States(broker.port), {"edge": process, "center": center}
        finally:
            process.terminate()
            process.wait(30)
            center.send_signal(signal.SIGINT)
            center.wait(30)


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}, worst {max(values):.3f}"


def main(gop_s: float = 1.0, cpu_runs: bool = True) -> None:
    """The whole run; ``gop_s``: the camera's key-frame interval; ``cpu_runs`` False: glass to
    glass only."""
    from center.services.auth import issue_token
    from simulators.clock_camera import ClockCamera

    tmp = Path(tempfile.mkdtemp(prefix="gridwatch-bench-live-"))
    print(f"{RUNS} runs of {MEASURE_S:.0f} s; {os.cpu_count()} CPU cores shared by camera, "
          "edge, broker, center, PostgreSQL, viewers and Chromium", flush=True)
    results: list[dict[str, Any]] = []
    print(f"camera: a key frame every {gop_s:g} s; load {os.getloadavg()[0]:.1f}", flush=True)
    camera = ClockCamera(width=1280, height=720, fps=25, gop_s=gop_s).start()
    edge_cameras = {"cameras": [{"id": CAMERA, "source": camera.url, "sample_fps": 1}]}
    try:
        with _center_and_edge(tmp, "bench_live_template", edge_cameras, {}) as (
                url, states, procs):
            token = issue_token(BENCH_SECRET, "eng-01", 3600)[0]
            out = tmp / "viewers.json"
            wait_for(lambda: any(c["id"] == CAMERA and c["state"] == "online"
                                 for c in _get(url, token, "/api/v1/cameras").json()), 60,
                     "the camera online", every=0.5)
            for run in range(RUNS if cpu_runs else 0):
                idle = _measure(procs)
                playing = states.playing
                one = _watch(url, token, 1, out)
                wait_for(lambda p=playing: states.playing > p, 30, "the stream to play")
                m1 = _measure(procs)
                m1 |= _end(one, out, MEASURE_S)
                many = _watch(url, token, VIEWERS, out)
                mn = _measure(procs)
                mn |= _end(many, out, MEASURE_S)
                row = {"run": run + 1, "edge_idle_cpu": idle["edge_cpu"],
                       "edge_stream_cpu": m1["edge_cpu"] - idle["edge_cpu"],
                       "center_idle_cpu": idle["center_cpu"], "center_1_cpu": m1["center_cpu"],
                       f"center_{VIEWERS}_cpu": mn["center_cpu"],
                       "center_per_viewer_cpu": (mn["center_cpu"] - m1["center_cpu"])
                       / (VIEWERS - 1),
                       "bytes_per_viewer_s": mn["bytes_per_s"] / VIEWERS,
                       "bytes_1_viewer_s": m1["bytes_per_s"],
                       "errors": m1["errors"] + mn["errors"]}
                results.append(row)
                print(f"run {run + 1}: edge {idle['edge_cpu']:.3f} cores idle, +"
                      f"{row['edge_stream_cpu']:.3f} per stream; center {idle['center_cpu']:.3f}"
                      f" idle, {m1['center_cpu']:.3f} with 1 viewer, {mn['center_cpu']:.3f} with"
                      f" {VIEWERS} (+{row['center_per_viewer_cpu']:.4f} per viewer); "
                      f"{row['bytes_per_viewer_s'] * 8 / 1e6:.2f} Mbit/s per viewer; "
                      f"errors {row['errors']}", flush=True)
                wait_for(lambda r=run: states.stopped > r, 60, "the stream to stop")
            latency = _latency(url, token, states)
            results.append({"latency_s": latency})
    finally:
        camera.stop()
    write_results(tmp, results)
    rows = [r for r in results if "run" in r]
    print("summary over runs (median, worst):")
    for key in ("edge_stream_cpu", "center_1_cpu", "center_per_viewer_cpu",
                "bytes_per_viewer_s") if rows else ():
        print(f"  {key}: {_summary([r[key] for r in rows])}")
    print(f"  streams played {states.playing}, of them transcoded {states.transcoded}; "
          f"load {os.getloadavg()[0]:.1f}")
    medians = [statistics.median(s) for s in results[-1]["latency_s"]]
    worst = [max(s) for s in results[-1]["latency_s"]]
    print(f"  glass to glass s: median of run medians {statistics.median(medians):.2f}, "
          f"worst {max(worst):.2f} (target <= 3 s)")


def _long_gop(_: argparse.Namespace) -> None:
    """Glass to glass of a camera with a key frame every 6 s (the demo's clips: one per 6-8 s
    loop), which the edge's default ``live.max_keyframe_interval_s`` (3 s) transcodes."""
    main(gop_s=6.0, cpu_runs=False)


# --- a wall of 16 cameras ------------------------------------------------------------------------

#: Tiles of the wall's largest layout: 16 different cameras, one viewer each.
WALL_TILES = 16


def _wall_district(tmp: Path) -> Path:
    """The demo district plus ``WALL_TILES`` cameras on the bench's edge (a district with 16
    cameras on one edge; the demo's has 3)."""
    import yaml

    from center.platform.settings import DEFAULTS_DIR

    source = DEFAULTS_DIR / "district" / "district.yaml"
    district = yaml.safe_load(source.read_text())
    district["grids"] = str(source.parent / district["grids"])
    district["cameras"] += [
        {"id": f"cam-wall-{i:02d}", "name": f"Wall {i:02d}", "lon": 120.1520 + i * 0.0005,
         "lat": 30.2715, "edge_id": EDGE} for i in range(1, WALL_TILES + 1)]
    path = tmp / "district-wall.yaml"
    path.write_text(yaml.safe_dump(district, allow_unicode=True))
    return path


def _one_second_gop(media: str, out: Path) -> Path:
    """``media`` re-encoded once with a key frame every second, as street cameras send: the
    clips themselves have one key frame per loop, which would make 6-8 s segments."""
    import av

    from tests.conftest import shared

    with av.open(str(shared(media))) as source, av.open(str(out), "w") as target:
        video = source.streams.video[0]
        rate = video.average_rate or 30
        stream = target.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.codec_context.gop_size = round(rate)
        stream.codec_context.options = {"preset": "ultrafast", "crf": "26",
                                        "sc_threshold": "0"}
        for i, frame in enumerate(source.decode(video)):
            picture = frame.reformat(format="yuv420p")
            picture.pts, picture.time_base = i, 1 / Fraction(rate)
            target.mux(stream.encode(picture))
        target.mux(stream.encode(None))
    return out


def _wall(_: argparse.Namespace) -> None:
    """Center CPU and bandwidth for a 16-tile wall of 16 different cameras, one viewer each:
    the real edge replays the demo's two H.264 street clips as 16 cameras (8 each, looped,
    re-encoded beforehand with a key frame every second, so remuxed like street cameras),
    ``RUNS`` runs of ``MEASURE_S``."""
    from center.services.auth import issue_token

    tmp = Path(tempfile.mkdtemp(prefix="gridwatch-bench-live-wall-"))
    clips = [_one_second_gop(media, tmp / f"clip-{i}.mp4")
             for i, (media, _loops) in enumerate(DEMO_CLIPS)]
    print(f"{RUNS} runs of {MEASURE_S:.0f} s, {WALL_TILES} cameras x 1 viewer; "
          f"{os.cpu_count()} CPU cores; load {os.getloadavg()[0]:.1f}", flush=True)
    cameras = [f"cam-wall-{i:02d}" for i in range(1, WALL_TILES + 1)]
    results: list[dict[str, Any]] = []
    edge = {"live": {"max_streams": WALL_TILES},
            "cameras": [{"id": camera, "source": str(clips[i % 2]), "loop": True,
                         "sample_fps": 0.2} for i, camera in enumerate(cameras)]}
    env = {"GRIDWATCH_DISTRICT": str(_wall_district(tmp)),
           "GRIDWATCH_LIVE__STREAMS_PER_EDGE": str(WALL_TILES)}
    with _center_and_edge(tmp, "bench_live_wall_template", edge, env) as (url, states, procs):
        token = issue_token(BENCH_SECRET, "eng-01", 3600)[0]
        wait_for(lambda: sum(c["id"] in cameras and c["state"] == "online"
                             for c in _get(url, token, "/api/v1/cameras").json())
                 == WALL_TILES, 120, "the cameras online", every=1.0)
        out = tmp / "viewers.json"
        for run in range(RUNS):
            idle = _measure(procs)
            playing = states.playing
            viewers = _watch(url, token, 1, out, ",".join(cameras))
            wait_for(lambda p=playing: states.playing >= p + WALL_TILES, 120,
                     "the 16 streams to play")
            m = _measure(procs)
            m |= _end(viewers, out, MEASURE_S)
            row = {"run": run + 1, "load": os.getloadavg()[0],
                   "center_idle_cpu": idle["center_cpu"], "center_16_cpu": m["center_cpu"],
                   "edge_idle_cpu": idle["edge_cpu"], "edge_16_cpu": m["edge_cpu"],
                   "mbit_s": m["bytes_per_s"] * 8 / 1e6, "segments": m["segments"],
                   "errors": m["errors"]}
            results.append(row)
            print(f"run {run + 1}: center {idle['center_cpu']:.3f} cores idle, "
                  f"{m['center_cpu']:.3f} with {WALL_TILES} streams x 1 viewer; edge "
                  f"{idle['edge_cpu']:.3f} -> {m['edge_cpu']:.3f}; served "
                  f"{row['mbit_s']:.1f} Mbit/s ({m['segments']} segments, "
                  f"{m['errors']} errors); load {row['load']:.1f}", flush=True)
            wait_for(lambda r=run: states.stopped >= (r + 1) * WALL_TILES, 90,
                     "the streams to stop")
    write_results(tmp, results)
    print("summary over runs (median, worst):")
    for key in ("center_idle_cpu", "center_16_cpu", "edge_16_cpu", "mbit_s", "load"):
        print(f"  {key}: {_summary([r[key] for r in results])}")


def _options_viewers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)


if __name__ == "__main__":
    helper_cli({"serve": (lambda args: serve_center(args, "bench-live"), serve_options),
                "viewers": (_viewers, _options_viewers),
                "per-stream": (_per_stream, lambda _p: None),
                "wall": (_wall, lambda _p: None), "long-gop": (_long_gop, lambda _p: None)})

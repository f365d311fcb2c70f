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
import uuid
from pathlib import Path
from typing import Any

from bench.harness import helper_cli, services, spawn, wait_for, write_results

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

def _serve(args: argparse.Namespace) -> None:
    import logging

    import uvicorn

    from center.app import create_app
    from center.platform.settings import (
        CenterSettings,
        DatabaseSettings,
        HttpSettings,
        MqttSettings,
    )

    logging.basicConfig(level=logging.WARNING)
    settings = CenterSettings(
        db=DatabaseSettings(dsn=args.dsn, pool_min=2, pool_max=8),
        mqtt=MqttSettings(port=args.mqtt_port, client_id=f"bench-live-{uuid.uuid4().hex[:8]}"),
        http=HttpSettings(port=args.port), secret_key=args.secret)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=args.port, log_level="warning",
                log_config=None)


async def _viewers(args: argparse.Namespace) -> None:
    """``--n`` viewers of one camera, each as hls.js plays a live playlist; on SIGTERM, the
    bytes and segments they got into ``--out``."""
    import httpx

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    got = {"bytes": 0, "segments": 0, "errors": 0}
    auth = {"Authorization": f"Bearer {args.token}"}

    async def one(client: httpx.AsyncClient) -> None:
        seen: set[str] = set()
        playlist, asked = None, 0.0
        while not stop.is_set():
            if time.monotonic() - asked > 8 or playlist is None:
                r = await client.post(f"/api/v1/cameras/{args.camera}/live", headers=auth)
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
        await asyncio.gather(*(one(client) for _ in range(args.n)))
    await asyncio.to_thread(Path(args.out).write_text, json.dumps(got))


def _segment_cost(media: str, loops: int) -> tuple[float, float, int, bool]:
    """The edge's work for one stream of ``media`` (looped): segmenting and the chunk
    messages, without the demuxing that runs anyway. (CPU s, video s, bytes, transcoded)."""
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
    segmenter = Segmenter(send)
    t0 = time.process_time()
    for packet in packets:
        segmenter.add(info, packet)
    return time.process_time() - t0, length * loops, sent, segmenter.transcoded


def _per_stream(_: argparse.Namespace) -> None:
    """Edge CPU per stream on the shared street clips: the remux (H.264, 1280x720 and
    960x540 at 30 fps) and the transcoding fallback (vtest.avi, MPEG-4 part 2, 768x576)."""
    for media, loops in (("media/cn_beijing_uadetrac_intersection_8s.mp4", 8),
                         ("media/vn_truccat_intersection_pavement_vendor_6s.mp4", 10),
                         ("media/vtest.avi", 1)):
        costs = []
        for _run in range(RUNS):
            cpu, video_s, sent, transcoded = _segment_cost(media, loops)
            costs.append(cpu / video_s)
        print(f"{Path(media).name}: {'transcoded' if transcoded else 'remuxed'}, "
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
    """Counts the edge's ``playing`` and ``stopped`` live states on the broker."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        from wire.protocol import live_state_topic

        self.playing = self.stopped = 0
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


def _measure(procs: dict[str, subprocess.Popen[str]]) -> dict[str, float]:
    cpu0 = {k: _cpu_s(p.pid) for k, p in procs.items()}
    t0 = time.monotonic()
    time.sleep(MEASURE_S)
    wall = time.monotonic() - t0
    return {f"{k}_cpu": (_cpu_s(p.pid) - cpu0[k]) / wall for k, p in procs.items()}


def _watch(url: str, token: str, n: int, out: Path) -> subprocess.Popen[str]:
    """``n`` viewers, started; measuring starts once the first segments are out."""
    viewers = spawn("bench.bench_live", "viewers", "--url", url, "--token", token,
                    "--camera", CAMERA, "--n", str(n), "--out", str(out))
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


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f}, worst {max(values):.3f}"


def main() -> None:
    import psycopg
    import yaml

    from center.services.auth import issue_token
    from simulators.clock_camera import ClockCamera
    from simulators.local_services import free_port

    tmp = Path(tempfile.mkdtemp(prefix="gridwatch-bench-live-"))
    print(f"{RUNS} runs of {MEASURE_S:.0f} s; {os.cpu_count()} CPU cores shared by camera, "
          "edge, broker, center, PostgreSQL, viewers and Chromium", flush=True)
    results: list[dict[str, Any]] = []
    camera = ClockCamera(width=1280, height=720, fps=25, gop_s=1.0).start()
    with services(tmp, "bench_live_template") as (admin, broker):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_live TEMPLATE bench_live_template")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        center = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_live", "serve", "--dsn",
             psycopg.conninfo.make_conninfo(admin, dbname="bench_live"), "--mqtt-port",
             str(broker.port), "--port", str(port), "--secret", BENCH_SECRET],
            env={**os.environ, **LIVE_ENV}, text=True)
        boxes = tmp / "boxes.yaml"
        boxes.write_text("frames: {}\n")
        config = tmp / "edge.yaml"
        config.write_text(yaml.safe_dump({
            "edge_id": EDGE, "broker": {"port": broker.port},
            "detector": {"model": "fake", "path": str(boxes)},
            "cameras": [{"id": CAMERA, "source": camera.url, "sample_fps": 1}]}))
        edge = subprocess.Popen([sys.executable, "-m", "gridwatch.cli", "edge", "run",
                                 "--config", str(config)], stderr=subprocess.DEVNULL, text=True)
        states = _States(broker.port)
        try:
            token = issue_token(BENCH_SECRET, "eng-01", 3600)[0]
            procs = {"edge": edge, "center": center}
            wait_for(lambda: _healthy(url), 60, "center start", every=0.2)
            out = tmp / "viewers.json"
            wait_for(lambda: any(c["id"] == CAMERA and c["state"] == "online"
                                 for c in _get(url, token, "/api/v1/cameras").json()), 60,
                     "the camera online", every=0.5)
            for run in range(RUNS):
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
            edge.terminate()
            edge.wait(30)
            center.send_signal(signal.SIGINT)
            center.wait(30)
            camera.stop()
    write_results(tmp, results)
    rows = [r for r in results if "run" in r]
    print("summary over runs (median, worst):")
    for key in ("edge_stream_cpu", "center_1_cpu", "center_per_viewer_cpu",
                "bytes_per_viewer_s"):
        print(f"  {key}: {_summary([r[key] for r in rows])}")
    medians = [statistics.median(s) for s in results[-1]["latency_s"]]
    worst = [max(s) for s in results[-1]["latency_s"]]
    print(f"  glass to glass s: median of run medians {statistics.median(medians):.2f}, "
          f"worst {max(worst):.2f} (target <= 3 s)")


def _options_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", required=True)
    p.add_argument("--mqtt-port", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True)


def _options_viewers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)


if __name__ == "__main__":
    helper_cli({"serve": (_serve, _options_serve), "viewers": (_viewers, _options_viewers),
                "per-stream": (_per_stream, lambda _p: None)})

"""Edge CPU of the alert clips' rolling packet buffer, per 25 fps 1080p camera (target: at most
1 % of one core, issue 14), and what cutting a clip costs.

The buffer needs no decoding: the edge's PyAV decoder already demuxes every packet, and the
buffer adds a copy of each into ``bytes`` and an append to a deque of key-frame groups
(edge/capture/packets.py). So the figure is a difference on the edge's own code path: the same
``PyAVDecoder`` over the same file, sampling nothing but the first key frame, once without and
once with ``packets=`` a ``CameraPackets`` of the default size (longest dwell 30 s + pre-roll
5 s + 10 s slack = 45 s, 64 MiB); the file is played ``PASSES`` times into one buffer (on one
clock, as a looping camera), so eviction runs in steady state. That difference is as small as
the run-to-run noise of demuxing, so the buffer's own work is also timed alone: the file's
packets demuxed once, then handed to a buffer ``PASSES`` times exactly as the decoder hands
them (copy into ``bytes``, ``Packet``, ``push``). CPU = process time per second of video,
100 % = one core. ``RUNS`` runs, reported as median and worst.

Cutting a clip: ``remux_mp4`` of a 15 s window (pre-roll + dwell + post-roll of a short
dwell) from the full buffer, milliseconds of CPU.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av

from bench.bench_decode import FPS, GOP, SECONDS, make_clip
from edge.capture.decode import PyAVDecoder
from edge.capture.packets import CameraPackets, Packet, PacketRing
from edge.clips import remux_mp4
from wire.paths import shared_file

CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
SIZE = (1920, 1080)
PASSES = 10
RUNS = 3
BUFFER_S = 45.0
BUFFER_BYTES = 64 * 1024 * 1024
CUT_S = 15.0


def play(path: str, packets: CameraPackets | None) -> float:
    """CPU seconds to demux the file ``PASSES`` times through the edge's decoder."""
    c0 = time.process_time()
    for n in range(PASSES):
        decoder = PyAVDecoder(path, period=1e9, live=False, strategy="keyframes",
                              packets=packets, packet_offset=n * SECONDS)
        for _ in decoder.frames():
            pass
        decoder.close()
    return time.process_time() - c0


def push_alone(path: str, packets: CameraPackets) -> float:
    """CPU seconds of the buffer's own work for ``PASSES`` plays of the file (demuxed before
    the clock starts): what ``PyAVDecoder._keep`` does per packet."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        base = stream.start_time or 0
        demuxed = [p for p in container.demux(stream)
                   if p.size and p.pts is not None and p.dts is not None]
        c0 = time.process_time()
        for n in range(PASSES):
            off = n * SECONDS
            for p in demuxed:
                packets.push(Packet(off + float((int(p.pts or 0) - base) * tb),
                                    off + float((int(p.dts or 0) - base) * tb), bytes(p),
                                    bool(p.is_keyframe),
                                    float(p.duration * tb) if p.duration else 0.0))
        return time.process_time() - c0


def main() -> None:
    print(f"{datetime.now().astimezone().date()} {platform.machine()} "
          f"{platform.processor() or ''}, PyAV {av.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "1080p.mp4"
        t0 = time.monotonic()
        make_clip(shared_file(CLIP), path, SIZE)
        mbit = path.stat().st_size * 8 / SECONDS / 1e6
        print(f"made {SECONDS} s of 1080p {FPS} fps H.264 (key frame every {GOP / FPS:g} s, "
              f"{mbit:.1f} Mbit/s) in {time.monotonic() - t0:.0f}s; {PASSES} passes a run",
              flush=True)
        video_s = SECONDS * PASSES
        percents, alone, cuts, per_packet, kept = [], [], [], [], []
        for run in range(RUNS):
            without = play(str(path), None)
            packets = CameraPackets("bench", PacketRing(BUFFER_S, BUFFER_BYTES))
            with_ring = play(str(path), packets)
            ring = packets.ring
            pct = 100.0 * (with_ring - without) / video_s
            percents.append(pct)
            own = push_alone(str(path), CameraPackets("alone", PacketRing(BUFFER_S,
                                                                          BUFFER_BYTES)))
            alone.append(100.0 * own / video_s)
            per_packet.append(1e6 * (with_ring - without) / (video_s * FPS))
            kept.append((ring.size, (ring.latest or 0) - (ring.earliest or 0)))
            latest = ring.latest or 0.0
            window = ring.window(latest - CUT_S, latest)
            assert window is not None
            c0 = time.process_time()
            remux_mp4(window, Path(tmp) / f"cut-{run}.mp4")
            cuts.append(1000 * (time.process_time() - c0))
            print(f"  run {run + 1}: demux {100 * without / video_s:.3f} % of a core, "
                  f"with the buffer {100 * with_ring / video_s:.3f} %: buffer {pct:.3f} % "
                  f"({per_packet[-1]:.1f} us a packet); the buffer alone {alone[-1]:.4f} % "
                  f"({1e6 * own / (video_s * FPS):.2f} us a packet); "
                  f"kept {ring.size / 2**20:.1f} MiB = "
                  f"{kept[-1][1]:.1f} s; a {CUT_S:g} s clip cut in {cuts[-1]:.1f} ms "
                  f"({window.size / 2**20:.1f} MiB)", flush=True)
    print()
    print("| figure | median | worst |")
    print("|---|---|---|")
    print(f"| buffer CPU alone, % of one core per 25 fps 1080p camera | "
          f"{statistics.median(alone):.4f} | {max(alone):.4f} |")
    print(f"| buffer CPU on the decoder path (difference), % of one core | "
          f"{statistics.median(percents):.3f} | {max(percents):.3f} |")
    print(f"| buffer CPU per packet on the decoder path, us | "
          f"{statistics.median(per_packet):.1f} | {max(per_packet):.1f} |")
    print(f"| cutting a {CUT_S:g} s clip (remux to MP4), ms CPU | {statistics.median(cuts):.1f} | "
          f"{max(cuts):.1f} |")
    print(f"\nbuffer memory in steady state: {statistics.median(k[0] for k in kept) / 2**20:.1f} "
          f"MiB for {statistics.median(k[1] for k in kept):.1f} s ({mbit:.1f} Mbit/s stream)")


if __name__ == "__main__":
    main()

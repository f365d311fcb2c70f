"""A street clip in which the parked motorbike *arrives* and later *leaves*, for alert clip
tests: the real Vietnamese pavement clip (the demo's cam-vn-01), with the pavement hidden by a
grey panel (a van standing in front of it) for ``hidden_s`` before and ``gone_s`` after.

The real clip shows the bike from its first frame, so a clip could never reach back before the
first sighting; here the first sighting is at ``hidden_s`` and the violation ends once the panel
has hidden the pavement for the zone's ``clear_s``. Encoded with libx264 (no B-frames,
a key frame every second) into ``path``, which the test then plays as a camera."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.conftest import shared

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
#: The panel covers the right of the frame, where the demo's pavement zone lies (x >= 0.79).
PANEL_FROM_X = 0.72
FPS = 30


def _frames(source: Path) -> list[np.ndarray]:
    with av.open(str(source)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def arriving_bike_clip(path: Path, *, hidden_s: float = 5.0, gone_s: float = 0.0) -> Path:
    """Write the clip (H.264, 1280x720, 30 fps) and return ``path``."""
    frames = _frames(shared(VN_CLIP))
    height, width = frames[0].shape[:2]

    def hidden(frame: np.ndarray) -> np.ndarray:
        out = frame.copy()
        out[:, int(width * PANEL_FROM_X):] = 128
        return out

    before = hidden(frames[0])
    after = hidden(frames[-1])
    sequence = ([before] * round(hidden_s * FPS) + frames + [after] * round(gone_s * FPS))
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.options = {"preset": "ultrafast", "crf": "30", "g": str(FPS),
                          "keyint_min": str(FPS)}
        for i, rgb in enumerate(sequence):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path

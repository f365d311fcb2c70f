"""Draw the phone app's icons (PNG) into dashboard/static/icons/: a grid on the wall-screen
navy with an amber location pin. Run after changing the design; the PNGs are committed.

    .venv/bin/python dashboard/make_icons.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent / "static" / "icons"
NAVY, GRID, AMBER, WHITE = (45, 27, 15), (110, 80, 52), (36, 176, 245), (255, 255, 255)


def icon(size: int, *, maskable: bool = False) -> np.ndarray:
    s = 4  # draw 4x larger, then shrink: smooth edges without antialiasing tricks
    n = size * s
    img = np.zeros((n, n, 3), np.uint8)
    img[:] = NAVY
    pad = int(n * (0.2 if maskable else 0.1))  # maskable: keep the art in the safe zone
    step = (n - 2 * pad) / 4
    for i in range(5):
        p = int(pad + i * step)
        cv2.line(img, (p, pad), (p, n - pad), GRID, max(1, n // 90))
        cv2.line(img, (pad, p), (n - pad, p), GRID, max(1, n // 90))
    cx, cy, r = n // 2, int(n * 0.44), int((n - 2 * pad) * 0.2)
    tip = (cx, int(cy + r * 2.3))
    cv2.fillConvexPoly(img, np.array([(cx - int(r * 0.86), cy + r // 2),
                                      (cx + int(r * 0.86), cy + r // 2), tip], np.int32), AMBER)
    cv2.circle(img, (cx, cy), r, AMBER, -1)
    cv2.circle(img, (cx, cy), int(r * 0.42), WHITE, -1)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("maskable-512.png", 512, True),
                                 ("apple-touch-icon.png", 180, False)):
        cv2.imwrite(str(OUT / name), icon(size, maskable=maskable),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(OUT / name)


if __name__ == "__main__":
    main()

"""Alert clips end to end with real parts: a street clip where a motorbike arrives -> the real
edge (NanoDet, packet buffer, remux, clip outbox) -> Mosquitto -> the center (assembly,
storage, signed URL) -> a ``<video>`` in Chromium that plays it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from edge.config import EdgeConfig
from edge.runner import run
from simulators.demo import DEMO_CAMERAS, DEMO_DETECTOR
from tests.browser import new_page
from tests.clip_media import arriving_bike_clip
from tests.conftest import RunningCenter
from tests.waiting import wait_until

#: The pavement is hidden this long before the bike shows (tests/clip_media.py).
HIDDEN_S = 5.0


def test_clip_from_before_the_bike_arrived_plays_in_chromium(
        center: RunningCenter, mqtt_broker: Any, tmp_path: Path, browser: Browser) -> None:
    source = arriving_bike_clip(tmp_path / "arriving.mp4", hidden_s=HIDDEN_S)
    vn = next(c for c in DEMO_CAMERAS if c["id"] == "cam-vn-01")
    camera = {k: v for k, v in vn.items() if k != "media"} | {"source": str(source),
                                                              "loop": False}
    config = EdgeConfig.model_validate({
        "edge_id": "edge-demo", "broker": {"port": mqtt_broker.port},
        "state_dir": str(tmp_path / "edge-state"), "detector": DEMO_DETECTOR,
        "cameras": [camera]})
    run(config, until_eof=True, speed=0)  # returns once its alerts and clips are delivered

    op = center.client("op-01")
    alerts = op.get("/api/v1/alerts", params={"camera_id": "cam-vn-01", "kind": "new"}).json()
    new = next(a for a in alerts if a["zone_id"] == "pavement-east")
    clips = wait_until(lambda: op.get(f"/api/v1/alerts/{new['alert_id']}/clips").json(), 20,
                       "the violation clip at the center")
    assert [c["kind"] for c in clips] == ["violation"]
    clip = clips[0]
    # The clip reaches back about the pre-roll (5 s) before the first sighting: the bike
    # arriving, not the moment its dwell ran out (key frames every second).
    lead = datetime.fromisoformat(new["started_at"]) - datetime.fromisoformat(clip["started_at"])
    assert timedelta(seconds=4) <= lead <= timedelta(seconds=6), lead
    assert clip["codec"] == "h264" and clip["browser_playable"]
    # The edge deleted it once the broker had every chunk.
    assert not list((tmp_path / "edge-state" / "clips").glob("*.mp4"))

    page, _ = new_page(browser, 800, 600)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
            else None)
    page.goto(center.url + "/healthz")  # any page of the center: same origin, its CSP
    page.evaluate("""(url) => {
        const video = document.createElement('video');
        video.muted = true;
        video.src = url;
        document.body.appendChild(video);
        video.play();
    }""", center.url + clip["url"])
    video = page.locator("video")
    wait_until(lambda: video.evaluate("v => v.readyState") >= 2, 20,
               "the video to have its first frames")
    start = float(video.evaluate("v => v.currentTime"))
    wait_until(lambda: float(video.evaluate("v => v.currentTime")) > start + 1.0, 20,
               "the video to play on")
    assert video.evaluate("v => v.error") is None
    assert video.evaluate("v => v.duration") > 8
    assert not [f for f in failed if "favicon" not in f], failed

"""Engineer view, on the unpatched center: a real edge (NanoDet on a shared clip) reports its
config and a camera frame through the broker; the center's own subscriptions and ingest store
them; a zone drawn on the engineer page reaches the edge, which applies it live, confirms it
(config state) and alerts in the new zone. Bad or foreign edge-state messages are dead-lettered
with the reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import psycopg
import pytest
from playwright.sync_api import Browser, expect

from edge.config import EdgeConfig
from edge.publish import shareable
from edge.reconfig import parse_pushed
from edge.runner import run
from tests.browser import new_page
from tests.conftest import RunningCenter, shared
from tests.mqtt_helpers import Publisher, tiny_jpeg, wait_until
from wire.paths import REPO
from wire.protocol import (
    camera_frame_topic,
    camera_status_topic,
    edge_config_state_topic,
    edge_config_topic,
    edge_status_topic,
)

VN_CLIP = "media/vn_truccat_intersection_pavement_vendor_6s.mp4"
VN_PAVEMENT = [[0.80, 0.42], [0.93, 0.38], [1.0, 0.36], [1.0, 1.0], [0.86, 1.0], [0.79, 0.62]]
ARTIFACTS = REPO / "test-artifacts"
#: The default district gives cam-vn-01 (whose tickets go to w-0111) to edge-demo: only that
#: edge may report it.
EDGE = "edge-demo"
CAMERA = "cam-vn-01"


def _doc(port: int, zones: list[dict[str, Any]]) -> dict[str, Any]:
    return {"edge_id": EDGE, "broker": {"port": port},
            "detector": {"score_threshold": 0.2, "threads": 2}, "heartbeat_s": 1,
            "frame_every_s": 2,
            "cameras": [{"id": CAMERA, "source": str(shared(VN_CLIP)), "loop": True,
                         "sample_fps": 2, "zones": zones}]}


@pytest.fixture
def edge(center: RunningCenter, mqtt_broker) -> Iterator[threading.Thread]:
    """The edge: one camera on the Vietnamese pavement clip with a zone whose dwell is never
    reached (600 s), so any alert comes from a zone pushed later."""
    start_zone = {"id": "pavement-old", "polygon": VN_PAVEMENT, "min_score": 0.2, "inertia": 2,
                  "dwell_s": 600, "clear_s": 2, "rules": [{"type": "illegal_parking"}]}
    config = EdgeConfig.model_validate(_doc(mqtt_broker.port, [start_zone]))
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(config,),
                              kwargs={"speed": 2, "stop_event": stop}, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(20)
        pub = Publisher(mqtt_broker.port)  # clear what this edge left retained
        for topic in (edge_config_topic(EDGE), edge_config_state_topic(EDGE),
                      camera_frame_topic(EDGE, CAMERA), camera_status_topic(EDGE, CAMERA),
                      edge_status_topic(EDGE)):
            pub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        pub.close()


def _edge_view(center: RunningCenter) -> dict[str, Any] | None:
    for e in center.client("eng-01").get("/api/v1/edges").json():
        if e["edge_id"] == EDGE and e["cameras"] and e["cameras"][0]["frame_url"]:
            return e
    return None


def _tickets_in(center: RunningCenter, zone_id: str) -> list[dict[str, Any]]:
    tickets = center.client("eng-01").get("/api/v1/tickets", params={"limit": 100}).json()
    return [t for t in tickets if t["zone_id"] == zone_id and t["camera_id"] == CAMERA]


def test_shared_config_has_no_secrets_and_pushes_back_unchanged(tmp_path) -> None:
    doc = _doc(1883, [])
    doc["broker"].update(username="edge", password="s3cret")
    doc["cameras"][0]["source"] = "rtsp://admin:pw123@10.0.0.5/stream1?token=abc"
    running = EdgeConfig.model_validate(doc)
    shared_doc = shareable(running)
    text = str(shared_doc)
    assert "s3cret" not in text and "pw123" not in text and "abc" not in text
    assert "username" not in shared_doc["broker"]
    shared_doc["cameras"][0]["zones"] = [{"id": "z", "polygon": [[0, 0], [1, 0], [1, 1]],
                                          "rules": [{"type": "illegal_parking"}]}]
    import json

    new = parse_pushed(json.dumps(shared_doc).encode(), running, tmp_path)
    assert new.broker.password == "s3cret"
    assert new.cameras[0].source == running.cameras[0].source
    assert [z.id for z in new.cameras[0].zones] == ["z"]


def test_legacy_one_rule_zone_reports_a_config_that_validates_again() -> None:
    """An edge whose YAML uses the one-rule zone form (event_type + classes) reports its config
    in the rules form, so the center accepts it and can push it back with edited zones."""
    doc = _doc(1883, [{"id": "z", "polygon": VN_PAVEMENT, "event_type": "0504",
                       "classes": ["person"]}])
    reported = shareable(EdgeConfig.model_validate(doc))
    zone = EdgeConfig.model_validate(reported).cameras[0].zones[0]
    assert zone.rules[0].type == "doorway_trading" and zone.rules[0].event_type == "0504"


def _dead_letters(db_dsn: str) -> dict[str, str]:
    with psycopg.connect(db_dsn) as conn:
        return dict(conn.execute("SELECT topic, reason FROM dead_letters ORDER BY id"))


def test_bad_or_foreign_edge_state_is_dead_lettered(center: RunningCenter, mqtt_broker,
                                                    db_dsn: str) -> None:
    """edge-sim may not report cam-vn-01 (the district gives it to edge-demo); a config with a
    NUL character or an invalid zone, and a frame that is no JPEG, are refused with the reason;
    the valid report after them is stored."""
    def state(edge_id: str, config: dict[str, Any]) -> bytes:
        return json.dumps({"edge_id": edge_id, "at": datetime.now(UTC).isoformat(),
                           "config": config}).encode()

    good = shareable(EdgeConfig.model_validate(_doc(mqtt_broker.port, [])))
    foreign = {**good, "edge_id": "edge-sim"}
    nul = json.loads(json.dumps(good))
    nul["cameras"][0]["name"] = "ok\u0000nul"
    invalid = json.loads(json.dumps(good))
    invalid["cameras"][0]["zones"] = [{"id": "z", "polygon": [[0, 0], [1, 0], [2, 1]],
                                       "rules": [{"type": "illegal_parking"}]}]
    pub = Publisher(mqtt_broker.port)
    try:
        pub.send(edge_config_state_topic("edge-sim"), state("edge-sim", foreign))
        pub.send(camera_frame_topic("edge-sim", CAMERA), tiny_jpeg())
        pub.send(edge_config_state_topic(EDGE), state(EDGE, nul))
        pub.send(edge_config_state_topic(EDGE), state(EDGE, invalid))
        pub.send(camera_frame_topic(EDGE, CAMERA), b"GIF89a not a jpeg")
        pub.send(edge_config_state_topic(EDGE), state(EDGE, good))  # the marker: valid
        wait_until(lambda: center.client("eng-01").get(
            f"/api/v1/edges/{EDGE}/config").status_code == 200, 15, "the valid config state")
    finally:
        pub.close()
    reasons = _dead_letters(db_dsn)
    sim = reasons[edge_config_state_topic("edge-sim")]
    assert "['cam-vn-01']" in sim and "does not give to edge edge-sim" in sim
    assert "not given to edge edge-sim" in reasons[camera_frame_topic("edge-sim", CAMERA)]
    assert "config.cameras[0].zones[0].polygon" in reasons[edge_config_state_topic(EDGE)]
    assert "not a JPEG" in reasons[camera_frame_topic(EDGE, CAMERA)]
    assert center.client("eng-01").get(f"/api/v1/cameras/{CAMERA}/frame.jpg").status_code == 404
    # The NUL config was refused before the valid one came: dead letters keep each reason.
    with psycopg.connect(db_dsn) as conn:
        all_reasons = [r for (r,) in conn.execute(
            "SELECT reason FROM dead_letters WHERE topic = %s ORDER BY id",
            (edge_config_state_topic(EDGE),))]
    assert len(all_reasons) == 2 and "NUL" in all_reasons[0]
    assert center.app.state.ingest.connected  # the loop goes on


def test_engineer_draws_a_zone_the_edge_applies_and_alerts_in(
        browser: Browser, center: RunningCenter, edge: threading.Thread) -> None:
    wait_until(lambda: _edge_view(center), 30, "the edge's config and frame at the center")
    view = _edge_view(center)
    assert view is not None
    cam = view["cameras"][0]
    assert cam["id"] == CAMERA and [z["id"] for z in cam["zones"]] == ["pavement-old"]
    assert view["frame_every_s"] == 2
    # The district gives edge-demo two more cameras this edge does not run: listed, not editable.
    assert {c["id"] for c in view["unconfigured"]} == {"cam-bj-01", "cam-vtest"}
    # An edge the district names that never reported is listed too, with its cameras.
    sim = next(e for e in center.client("eng-01").get("/api/v1/edges").json()
               if e["edge_id"] == "edge-sim")
    assert sim["config_at"] is None and sim["cameras"] == []
    assert {c["id"] for c in sim["unconfigured"]} == {"cam-sim-12", "cam-sim-21"}
    frame = center.client("eng-01").get(cam["frame_url"])
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 640
    config = center.client("eng-01").get(f"/api/v1/edges/{EDGE}/config").json()["config"]
    assert "username" not in config["broker"] and "password" not in config["broker"]

    # A bad zone is refused with the key named, and nothing is pushed.
    bad = center.client("eng-01").put(f"/api/v1/cameras/{CAMERA}/zones", json={"zones": [
        {"id": "z", "polygon": [[0.1, 0.1], [2.0, 0.1], [0.5, 0.5]],
         "rules": [{"type": "illegal_parking"}]}]})
    assert bad.status_code == 422
    assert "zones[0].polygon" in bad.json()["detail"] and "outside 0..1" in bad.json()["detail"]
    typo = center.client("eng-01").put(f"/api/v1/cameras/{CAMERA}/zones", json={"zones": [
        {"id": "z", "polygon": VN_PAVEMENT, "rules": [{"type": "illegal_parking",
                                                       "dwel_s": 3}]}]})
    assert typo.status_code == 422 and "zones[0].rules[0].dwel_s" in typo.json()["detail"]
    assert center.client("eng-01").put("/api/v1/cameras/nope/zones",
                                       json={"zones": []}).status_code == 404
    unrun = center.client("eng-01").put("/api/v1/cameras/cam-bj-01/zones", json={"zones": []})
    assert unrun.status_code == 404 and "config file" in unrun.json()["detail"]

    # The page shows the frame with the edge's zone drawn on it.
    page, errors = new_page(browser, 1280, 900, center=center, person_id="eng-01")
    page.goto(f"{center.url}/engineer?camera={CAMERA}&lang=en")
    expect(page.locator("#frame")).not_to_have_js_property("naturalWidth", 0, timeout=10_000)
    expect(page.locator('#overlay polygon[data-zone-id="pavement-old"]')).to_have_count(1)
    expect(page.locator('.is-unconfigured[data-camera-id="cam-bj-01"]')).to_contain_text(
        "not configured on the edge")
    expect(page.locator('.eng-edge[data-edge-id="edge-sim"] h3')).to_contain_text(
        "has not reported its config")

    # Draw a new zone over the pavement (inside the old one: every click adds a point while
    # drawing), give it a short dwell and a low score floor, move a point, save.
    page.click("#add-zone")
    stage = page.locator("#overlay").bounding_box()
    assert stage is not None
    for fx, fy in VN_PAVEMENT:
        page.mouse.click(stage["x"] + min(fx, 0.995) * stage["width"],
                         stage["y"] + min(fy, 0.995) * stage["height"])
    page.click("#add-zone")  # finish drawing
    form = page.locator(".zone-form").nth(1)
    expect(form).to_contain_text("6 points")
    for field, value in (("id", "kerb-east"), ("dwell_s", "2"), ("min_score", "0.2")):
        form.locator(f'input[data-field="{field}"]').fill(value)
        form.locator(f'input[data-field="{field}"]').dispatch_event("change")
    point = page.locator('#overlay .zone-point[data-point="0"]')
    box = point.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(stage["x"] + 0.78 * stage["width"], stage["y"] + 0.40 * stage["height"],
                    steps=4)
    page.mouse.up()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "engineer-1280x900.png"))
    page.click("#save")
    expect(page.locator("#eng-status")).to_have_attribute("data-state", "applied", timeout=30_000)

    # The edge runs it (its config state says so) ...
    config = center.client("eng-01").get(f"/api/v1/edges/{EDGE}/config").json()["config"]
    zones = {z["id"]: z for z in config["cameras"][0]["zones"]}
    assert set(zones) == {"pavement-old", "kerb-east"}
    kerb = zones["kerb-east"]
    assert kerb["rules"][0]["type"] == "illegal_parking" and kerb["rules"][0]["dwell_s"] == 2
    assert kerb["min_score"] == 0.2 and len(kerb["polygon"]) == 6
    x0, y0 = kerb["polygon"][0]
    assert 0.77 < x0 < 0.79 and 0.39 < y0 < 0.41
    # ... and alerts in it, while the old zone (600 s dwell) still has not: the page shows it.
    wait_until(lambda: _tickets_in(center, "kerb-east"), 40, "an alert (ticket) in the new zone")
    assert not _tickets_in(center, "pavement-old")
    expect(page.locator('#alert-list li[data-zone-id="kerb-east"]').first).to_be_visible(
        timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "engineer-applied-1280x900.png"))
    assert edge.is_alive()
    assert errors == []

"""Alert clips at the center (center/services/clips.py, center/api/clips.py): chunks over the
real broker become one verified MP4 and an ``alert_clips`` row, served with range requests to
whoever may see the alert, pushed on the websocket; bad chunks are dead-lettered and nothing
else is lost."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import RunningCenter, shared
from tests.mqtt_helpers import Publisher, make_alert
from tests.plain_http import TLS_CONTEXT
from tests.waiting import wait_until
from wire.protocol import CLIP_CHUNK_BYTES, ClipKind, clip_id_for, clip_topic

#: A real H.264 MP4 (2.3 MB: 9 chunks).
CLIP = shared("media/vn_truccat_intersection_pavement_vendor_6s.mp4").read_bytes()
EDGE, CAMERA = "edge-demo", "cam-vn-01"


def chunks(data: bytes, alert_id: uuid.UUID, *, kind: ClipKind = "violation", edge: str = EDGE,
           camera: str = CAMERA, sha256: str | None = None) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    count = -(-len(data) // CLIP_CHUNK_BYTES)
    return [{"schema_version": 1, "clip_id": str(clip_id_for(alert_id, kind)),
             "alert_id": str(alert_id), "kind": kind, "edge_id": edge, "camera_id": camera,
             "started_at": (now - timedelta(seconds=14)).isoformat(),
             "ended_at": now.isoformat(), "codec": "h264", "content_type": "video/mp4",
             "size": len(data), "sha256": sha256 or hashlib.sha256(data).hexdigest(),
             "index": i, "count": count,
             "data": base64.b64encode(data[i * CLIP_CHUNK_BYTES:(i + 1) * CLIP_CHUNK_BYTES])
             .decode()} for i in range(count)]


def send(publisher: Publisher, docs: list[dict[str, Any]], camera: str = CAMERA,
         edge: str = EDGE) -> None:
    for doc in docs:
        publisher.send(clip_topic(edge, camera), json.dumps(doc))


def stored_clips(center: RunningCenter) -> list[tuple[str, str, int]]:
    with psycopg.connect(center.settings.db.dsn) as conn:
        return conn.execute("SELECT clip_id::text, kind, size FROM alert_clips"
                            " ORDER BY stored_at").fetchall()


def dead_letters(center: RunningCenter) -> list[str]:
    with psycopg.connect(center.settings.db.dsn) as conn:
        return [r[0] for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]


def alert_in(center: RunningCenter, publisher: Publisher) -> uuid.UUID:
    """A new alert at the demo place (ticket to w-0111), stored."""
    alert = make_alert()
    publisher.alert(alert)
    wait_until(lambda: center.client("op-01").get(f"/api/v1/alerts/{alert.alert_id}/clips")
               .status_code == 200, 10, "the alert to be stored")
    return alert.alert_id


def test_bad_chunks_are_dead_lettered_and_a_good_clip_still_arrives(
        center: RunningCenter, mqtt_broker: Any) -> None:
    publisher = Publisher(mqtt_broker.port)
    try:
        alert_id = alert_in(center, publisher)
        good = chunks(CLIP, alert_id)
        bad_b64 = good[0] | {"data": "%%% not base64 %%%"}
        oversized = good[0] | {"data": base64.b64encode(b"x" * (CLIP_CHUNK_BYTES + 10)).decode()}
        wrong_count = good[0] | {"count": 3}
        send(publisher, [{"not": "a chunk"}, bad_b64, oversized, wrong_count])
        # Another edge's camera (the district gives cam-sim-12 to edge-sim), a payload naming
        # another camera than its topic, and a clip for an alert of another camera.
        send(publisher, chunks(CLIP[:1000], alert_id, camera="cam-sim-12"), camera="cam-sim-12")
        send(publisher, chunks(CLIP[:1000], alert_id, camera="cam-bj-01"))
        send(publisher, chunks(CLIP[:1000], alert_id, camera="cam-bj-01"), camera="cam-bj-01")
        # Two chunks whose joined bytes are not what the edge said.
        send(publisher, chunks(CLIP[:CLIP_CHUNK_BYTES + 10], alert_id, kind="end",
                               sha256="0" * 64))
        # The good clip, twice (a redelivery), its chunks in any order.
        send(publisher, good[::-1])
        send(publisher, good)
        wait_until(lambda: len(stored_clips(center)) == 1, 20, "the good clip")
        assert stored_clips(center) == [(str(clip_id_for(alert_id, "violation")), "violation",
                                         len(CLIP))]
        reasons = dead_letters(center)
        expected = ["Field required", "not valid base64", "larger than", "does not fit size",
                    "camera cam-sim-12 is given to edge-sim, not to edge edge-demo",
                    ("names edge edge-demo/camera cam-bj-01 but was published under "
                     "edge-demo/cam-vn-01"),
                    f"alert {alert_id} is camera cam-vn-01 of edge edge-demo, not cam-bj-01",
                    "join to 262154 bytes with sha256"]
        wait_until(lambda: len(dead_letters(center)) >= len(expected), 10, "the dead letters")
        reasons = dead_letters(center)
        for want in expected:
            assert any(want in r for r in reasons), (want, reasons)
        assert len(reasons) == len(expected), reasons
        # The refused end clip's chunks were dropped: nothing half-assembled is left.
        partial = center.settings.clips.folder() / "partial"
        assert not list(partial.iterdir())
    finally:
        publisher.close()


def test_clip_is_served_with_ranges_to_those_who_see_the_alert(
        center: RunningCenter, mqtt_broker: Any) -> None:
    publisher = Publisher(mqtt_broker.port)
    try:
        alert_id = alert_in(center, publisher)
        with center.ws("op-01") as wall, center.ws("w-0111") as phone:
            assert json.loads(wall.recv(5))["type"] == "hello"
            assert json.loads(phone.recv(5))["type"] == "hello"
            assert center.client("op-01").get(f"/api/v1/alerts/{alert_id}/clips").json() == []
            send(publisher, chunks(CLIP, alert_id))

            def clip_event(ws: Any) -> dict[str, Any]:
                while True:
                    event = json.loads(ws.recv(20))
                    if event["type"] == "clip":
                        return dict(event["data"])

            pushed = clip_event(wall)
            assert clip_event(phone)["clip_id"] == pushed["clip_id"]
        assert pushed["alert_id"] == str(alert_id) and pushed["kind"] == "violation"
        listed = center.client("op-01").get(f"/api/v1/alerts/{alert_id}/clips").json()
        assert [(c["clip_id"], c["kind"], c["camera_id"], c["size"], c["codec"],
                 c["browser_playable"]) for c in listed] == [
            (pushed["clip_id"], "violation", CAMERA, len(CLIP), "h264", True)]
        url = listed[0]["url"]
        assert "sig=" in url
        # The signed URL needs no header (a <video src>): whole, then a range (206).
        plain = httpx.Client(base_url=center.url, verify=TLS_CONTEXT)
        whole = plain.get(url)
        assert whole.status_code == 200 and whole.content == CLIP
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        part = plain.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206, part.text
        assert part.headers["content-range"] == f"bytes 100-199/{len(CLIP)}"
        assert part.content == CLIP[100:200]
        assert plain.get(url, headers={"Range": f"bytes={len(CLIP) + 10}-"}).status_code == 416
        assert plain.get(url.split("?")[0]).status_code == 401
        # The case's worker sees it; a worker of another micro-grid does not.
        assert center.client("w-0111").get(f"/api/v1/alerts/{alert_id}/clips").status_code == 200
        outside = center.client("w-0211")
        refused = outside.get(f"/api/v1/alerts/{alert_id}/clips")
        assert refused.status_code == 403 and "w-0211" in refused.json()["detail"]
        assert outside.get(url.split("?")[0]).status_code == 403
        assert center.client("op-01").get(
            f"/api/v1/alerts/{uuid.uuid4()}/clips").status_code == 404
    finally:
        publisher.close()


def test_retention_removes_old_clips_and_chunks_that_never_completed(
        db_dsn: str, tmp_path: Path) -> None:
    """What the hourly sweep does (app ``_sweep_clips``): rows and videos of clips stored
    before the retention cutoff go, newer ones stay; staged chunks older than
    ``partial_max_age_h`` go."""
    from center.services.clip_storage import FolderStorage
    from center.services.clips import ClipService
    from center.store import clips as store
    from center.store.clips import ClipRow
    from center.store.db import open_pool

    now = datetime.now(UTC)
    storage = FolderStorage(tmp_path / "store")

    def row(age_days: int) -> ClipRow:
        alert_id = uuid.uuid4()
        key = f"{alert_id}.mp4"
        (tmp_path / "store" / key).write_bytes(b"mp4")
        return ClipRow(clip_id_for(alert_id, "violation"), alert_id, "violation", EDGE,
                       CAMERA, now, now, "h264", "video/mp4", 3, "0" * 64, key,
                       now - timedelta(days=age_days))

    old, recent = row(40), row(2)
    stale = tmp_path / "partial" / str(uuid.uuid4())
    stale.mkdir(parents=True)
    (stale / "0.part").write_bytes(b"x")
    os.utime(stale, (0, 0))

    async def sweep() -> tuple[int, list[str]]:
        pool = await open_pool(db_dsn, min_size=1, max_size=2)
        try:
            async with pool.connection() as conn:
                for r in (old, recent):
                    await store.insert(conn, r)
            service = ClipService(pool, storage, tmp_path / "partial")
            gone = await service.sweep(now, 30, 3600)
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT storage_key FROM alert_clips")
                return gone, [r[0] for r in await cur.fetchall()]
        finally:
            await pool.close()

    gone, left = asyncio.run(sweep())
    assert gone == 1 and left == [recent.storage_key]
    assert not (tmp_path / "store" / old.storage_key).exists()
    assert (tmp_path / "store" / recent.storage_key).exists()
    assert not stale.exists()

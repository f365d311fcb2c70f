"""Department staff and alert clips: a case handed off to a department brings its clip into
that department's staff's view (the tickets' ``Scope``, center/store/tickets.py, read by
center/services/clips.py ``why_not_watch``), and a case that is not theirs keeps it out."""

from __future__ import annotations

from typing import Any

import psycopg

from tests import plain_http
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher
from tests.test_clips_center import CLIP, alert_in, chunks, send, stored_clips
from tests.waiting import wait_until
from wire.protocol import clip_id_for

STAFF = "d-market-01"  # market supervision: event type 0504, not the demo alert's 0506


def test_department_staff_see_the_clip_of_a_case_handed_off_to_them_only(
        center: RunningCenter, mqtt_broker: Any) -> None:
    publisher = Publisher(mqtt_broker.port)
    try:
        alert_id = alert_in(center, publisher)
        send(publisher, chunks(CLIP, alert_id))
        wait_until(lambda: len(stored_clips(center)) == 1, 30, "the clip to be stored")
    finally:
        publisher.close()
    with psycopg.connect(center.settings.db.dsn) as conn:
        row = conn.execute("SELECT ticket_id FROM alerts WHERE alert_id = %s"
                           " AND ticket_id IS NOT NULL", (alert_id,)).fetchone()
    assert row is not None
    ticket_id = row[0]
    staff = center.client(STAFF)
    video = f"/api/v1/clips/{clip_id_for(alert_id, 'violation')}.mp4"
    signed = staff.post("/api/v1/auth/signed-urls", json={"urls": [video]}).json()["urls"][0]

    # Urban management's case (0506): market supervision sees neither the list nor the video.
    refused = staff.get(f"/api/v1/alerts/{alert_id}/clips")
    assert refused.status_code == 403 and STAFF in refused.json()["detail"], refused.text
    assert plain_http.get(center.url + signed).status_code == 403

    handed = center.client("l-011").post(
        f"/api/v1/tickets/{ticket_id}/actions",
        json={"action": "hand_off", "department_id": "d-market", "note": "占道经营，需市监处理"})
    assert handed.status_code == 200, handed.text
    assert handed.json()["department_id"] == "d-market"

    # Handed off to market supervision: its staff see the clip and play it.
    listed = staff.get(f"/api/v1/alerts/{alert_id}/clips")
    assert listed.status_code == 200, listed.text
    [clip] = listed.json()
    assert clip["clip_id"] == str(clip_id_for(alert_id, "violation"))
    played = plain_http.get(center.url + clip["url"], headers={"Range": "bytes=0-99"})
    assert played.status_code == 206 and played.content == CLIP[:100]
    assert plain_http.get(center.url + signed).status_code == 200

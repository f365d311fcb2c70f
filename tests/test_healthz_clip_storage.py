"""/healthz says when the clip storage does not answer (issue 16): a line for it, the center
"degraded" but still ready (200), because clips wait in the staging folder and alerts flow
(center/services/clip_storage.py ``StorageProbe``; docs/deployment.md). Against moto's S3
server, as tests/test_clip_storage_s3.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import plain_http
from tests.mqtt_helpers import Publisher
from tests.test_clip_storage_s3 import MotoS3, s3, s3_center
from tests.test_clips_center import CLIP, alert_in, chunks, send, stored_clips
from tests.waiting import wait_until

__all__ = ["s3"]


def _health(url: str) -> tuple[int, dict[str, Any]]:
    answer = plain_http.get(url + "/healthz", timeout=10)
    return answer.status_code, answer.json()


def test_an_unreachable_clip_store_is_a_warning_not_a_failed_readiness(
        db_dsn: str, mqtt_broker: Any, s3: MotoS3, tmp_path: Path) -> None:
    with s3_center(db_dsn, mqtt_broker.port, s3, tmp_path) as center:  # nothing listens yet
        publisher = Publisher(mqtt_broker.port)
        try:
            alert_id = alert_in(center, publisher)  # the alert flows: its ticket is there
            send(publisher, chunks(CLIP, alert_id))

            def warned() -> dict[str, Any] | None:
                code, health = _health(center.url)
                assert code == 200, health  # ready: alerts still work
                clip = health["clip_storage"]
                return health if clip["answers"] is False and clip["waiting_clips"] == 1 else None

            health = wait_until(warned, 60, "/healthz to say the clip store does not answer")
            assert health["status"] == "degraded" and health["problems"] == [], health
            [warning] = health["warnings"]
            assert s3.endpoint in warning and "1 clip(s) wait" in warning, warning
            assert "alerts are unaffected" in warning

            s3.start()  # the store answers: the clip goes in, and the line clears
            wait_until(lambda: len(stored_clips(center)) == 1, 90, "the clip to be stored")

            def cleared() -> dict[str, Any] | None:
                code, health = _health(center.url)
                return health if code == 200 and health["status"] == "ok" else None

            health = wait_until(cleared, 30, "/healthz ok again")
            assert health["clip_storage"]["answers"] is True, health
            assert health["clip_storage"]["waiting_clips"] == 0 and health["warnings"] == []
        finally:
            publisher.close()

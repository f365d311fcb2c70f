"""A running center keeps what it started with out of the collector's full passes, and hands
it back when it stops (center/platform/gc_pauses.py; the pauses it removed are in
docs/performance.md "Garbage collection pauses")."""

from __future__ import annotations

import gc

from center.platform.gc_pauses import YOUNG_THRESHOLD
from simulators.local_services import Mosquitto
from tests.conftest import center_settings_for, serve_center


def test_a_running_center_has_frozen_its_startup_heap_and_thaws_it_when_it_stops(
        db_dsn: str, mqtt_broker: Mosquitto) -> None:
    with serve_center(center_settings_for(db_dsn, mqtt_broker.port)) as center:
        # The district, views, FastAPI, psycopg and pydantic: far more than a few objects.
        assert gc.get_freeze_count() > 50_000
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        r = center.client("op-01").get("/api/v1/tickets")
        assert r.status_code == 200, r.text
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] != YOUNG_THRESHOLD

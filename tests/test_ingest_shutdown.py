"""A stopping center never reconnects to the broker (docs/simulators.md "Findings", broker
restart). When the ingest is cancelled, aiomqtt's disconnect on the way out can fail: it waits
for the broker up to its timeout, and a connection that died unnoticed never answers. The
ingest once took that ``MqttError`` for an outage, reconnected during the shutdown and went on
storing, so the shutdown never finished. Here aiomqtt's exit fails that way whenever its task
is being cancelled (the library's failure, simulated: nothing of gridwatch is replaced)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiomqtt
import pytest

from simulators.local_services import Mosquitto
from tests.conftest import center_settings_for, serve_center
from tests.waiting import wait_until


def test_a_cancelled_ingest_stops_even_when_its_disconnect_fails(
        db_dsn: str, mqtt_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    original = aiomqtt.Client.__aexit__

    async def disconnect_timed_out(self: aiomqtt.Client, *exc: Any) -> None:
        await original(self, *exc)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise aiomqtt.MqttError("Operation timed out")

    monkeypatch.setattr(aiomqtt.Client, "__aexit__", disconnect_timed_out)
    caplog.set_level(logging.INFO, logger="center.transport.ingest")
    with serve_center(center_settings_for(db_dsn, mqtt_broker.port)) as center:
        ingest = center.app.state.ingest
    connects = [r for r in caplog.records if r.getMessage().startswith("mqtt connected")]
    retries = [r for r in caplog.records if "mqtt unavailable" in r.getMessage()]
    assert len(connects) == 1 and not retries, [r.getMessage() for r in caplog.records]
    wait_until(lambda: not ingest.connected, 5, "the ingest to be down after the stop")

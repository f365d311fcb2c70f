"""A broker that cannot be reached is said plainly in the edge's log: which host and port, why,
when paho tries again, and where the alerts wait meanwhile (on disk only with a state_dir)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.config import BrokerConfig
from edge.outbox import EdgeStore
from edge.publish import MqttPublisher
from simulators.local_services import free_port
from tests.mqtt_helpers import make_alert, wait_until


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot connect to MQTT" in r.getMessage()]


@pytest.mark.parametrize("with_state_dir", [True, False])
def test_broker_down_is_logged_with_address_reason_retry_and_where_alerts_wait(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, with_state_dir: bool) -> None:
    port = free_port()  # a real port on which nothing listens: every connect is refused
    db = tmp_path / "state" / "edge.sqlite"
    store = EdgeStore(db if with_state_dir else None)
    publisher = MqttPublisher("edge-t", BrokerConfig(host="127.0.0.1", port=port), store=store)
    caplog.set_level(logging.INFO, logger="edge.publish")
    publisher.start()
    try:
        publisher.send(make_alert(edge_id="edge-t"))
        failures = wait_until(lambda: len(_failures(caplog)) >= 2 and _failures(caplog), 10,
                              "two failed connects logged")
    finally:
        publisher.close(timeout=0.2)
        store.close()
    first, second = failures[:2]
    assert f"edge=edge-t cannot connect to MQTT broker 127.0.0.1:{port}" in first, first
    assert "ConnectionRefusedError" in first and "retrying in 1 s (attempt 1)" in first, first
    assert "retrying in 2 s (attempt 2)" in second, second  # paho's doubling, mirrored
    said = caplog.text
    if with_state_dir:
        assert f"alerts are queued on disk in {db} until then" in first, first
        assert f"1 alerts not yet acknowledged stay queued on disk in {db}" in said, said
    else:
        assert "alerts are held in memory until then and lost if the edge stops" in first
        assert "on disk" not in said, said
        assert "1 alerts not yet acknowledged are LOST" in said, said

"""wire.mqtt_tls: one TLS model read from the edge's YAML keys and the center's environment
(the names docs/security.md gives); the real handshakes are in tests/test_mqtt_auth.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from center.platform.settings import CenterSettings
from edge.config import load_config
from tests.tls_helpers import make_pki
from wire.mqtt_tls import MqttTls

EDGE_YAML = """\
edge_id: edge-a
broker:
  port: 8883
  tls:
    ca_file: certs/ca.crt
    cert_file: /etc/gridwatch/edge-a.crt
    key_file: certs/edge-a.key
    insecure: true
cameras:
  - id: cam1
    source: "0"
    zones: []
"""


def test_edge_yaml_keys_and_relative_paths_from_the_files_folder(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(EDGE_YAML, encoding="utf-8")
    tls = load_config(path).broker.tls
    assert tls is not None and tls.insecure
    assert tls.ca_file == tmp_path.resolve() / "certs" / "ca.crt"
    assert tls.key_file == tmp_path.resolve() / "certs" / "edge-a.key"
    assert tls.cert_file == Path("/etc/gridwatch/edge-a.crt")


def test_center_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "test CA")
    monkeypatch.setenv("GRIDWATCH_MQTT__TLS__ENABLED", "true")
    monkeypatch.setenv("GRIDWATCH_MQTT__TLS__CA_FILE", str(pki.ca_cert))
    monkeypatch.setenv("GRIDWATCH_MQTT__TLS__INSECURE", "true")
    mqtt = CenterSettings(_env_file=None).mqtt  # type: ignore[call-arg]
    kwargs = mqtt.client_kwargs()
    assert kwargs["tls_params"].ca_certs == str(pki.ca_cert) and kwargs["tls_insecure"] is True
    monkeypatch.setenv("GRIDWATCH_MQTT__TLS__ENABLED", "false")
    assert "tls_params" not in CenterSettings(_env_file=None).mqtt.client_kwargs()  # type: ignore[call-arg]


@pytest.mark.parametrize("files", [{"cert_file": "a.crt"}, {"key_file": "a.key"}])
def test_a_client_certificate_needs_its_key_on_both_sides(files: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="give both cert_file and key_file"):
        MqttTls.model_validate(files)
    for key, value in files.items():
        monkeypatch.setenv(f"GRIDWATCH_MQTT__TLS__{key.upper()}", value)
    with pytest.raises(ValidationError, match="give both cert_file and key_file"):
        CenterSettings(_env_file=None)  # type: ignore[call-arg]

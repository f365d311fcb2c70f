"""Bad input, generated (hypothesis): every MQTT payload parser and every config loader either
accepts its input or refuses it with the project's own error and a message; nothing else may
escape (no TypeError, KeyError, UnicodeDecodeError, RecursionError …).

Inputs: arbitrary bytes; truncated, non-UTF-8 and oversized versions of valid messages; valid
messages with one to three values replaced, removed or added (wrong schema_version, wrong
types, unknown keys, snapshots that are not JPEGs); and the same for the YAML files the center
and the edges load. Last, a batch of such messages goes through a real broker into a running
center, which must dead-letter the bad ones and log no unexpected error.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from center.domain.district import DistrictError, load_district
from center.domain.event_types import load_event_types
from center.domain.time_limits import load_time_limits
from edge.config import ConfigError, load_config
from tests import plain_http
from tests.mqtt_helpers import Publisher, alert_json, make_alert, tiny_jpeg, wait_until
from wire.paths import DEFAULTS_DIR
from wire.protocol import (
    MAX_SNAPSHOT_BYTES,
    Alert,
    CameraStatus,
    EdgeConfigState,
    EdgeStatus,
    Heartbeat,
    alert_topic,
    parse_alert,
)

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- strategies -----------------------------------------------------------------------------

leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                 st.sampled_from(["", "0506", "2024-01-01T00:00:00", "2024-01-01T00:00:00+08:00",
                                  "new", "end", "online", "00:00", "25:00", "../../etc/passwd",
                                  "💥", "\x00", "a" * 300]))
json_value = st.recursive(leaf, lambda ch: st.lists(ch, max_size=4)
                          | st.dictionaries(st.text(max_size=12), ch, max_size=4),
                          max_leaves=12)


def mutate(data: st.DataObject, doc: Any) -> Any:
    """One to three random edits of a parsed document: replace, delete or add a value at a
    random place (the root included)."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        parent: Any = None
        key: Any = None
        node = doc
        while isinstance(node, dict | list) and node and data.draw(st.integers(0, 3)) > 0:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, data.draw(st.sampled_from(keys))
            node = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if parent is None:
            if action == "add" and isinstance(doc, dict):
                doc[data.draw(st.text(max_size=12))] = data.draw(json_value)
            elif action == "replace":
                doc = data.draw(json_value)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(node, dict):
            node[data.draw(st.text(max_size=12))] = data.draw(json_value)
        elif action == "add" and isinstance(node, list):
            node.append(data.draw(json_value))
        else:
            parent[key] = data.draw(json_value)
    return doc


def _now() -> str:
    return datetime.now(UTC).isoformat()


def valid_messages() -> dict[type[BaseModel], dict[str, Any]]:
    return {
        Alert: alert_json(make_alert()),
        CameraStatus: {"schema_version": 1, "edge_id": "e1", "camera_id": "c1",
                       "state": "online", "at": _now(), "detail": "", "fps": 2.0},
        EdgeStatus: {"schema_version": 1, "edge_id": "e1", "state": "online", "at": _now()},
        Heartbeat: {"schema_version": 1, "edge_id": "e1", "at": _now(), "cameras": 1,
                    "frames_analysed": 10, "frames_dropped": 0},
        EdgeConfigState: {"schema_version": 1, "edge_id": "e1", "at": _now(),
                          "config": {"edge_id": "e1", "cameras": []}},
    }


MODELS = list(valid_messages())


def payloads(model: type[BaseModel]) -> st.SearchStrategy[bytes]:
    """Bytes that look more or less like ``model``'s messages."""
    good = json.dumps(valid_messages()[model]).encode()

    @st.composite
    def edited(draw: st.DrawFn) -> bytes:
        return json.dumps(mutate(draw(st.data()), valid_messages()[model]),
                          allow_nan=True).encode()

    @st.composite
    def truncated(draw: st.DrawFn) -> bytes:
        return good[:draw(st.integers(0, len(good) - 1))]

    @st.composite
    def broken_utf8(draw: st.DrawFn) -> bytes:
        at = draw(st.integers(0, len(good)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]))
        return good[:at] + junk + good[at:]

    return st.one_of(st.binary(max_size=512), edited(), truncated(), broken_utf8())


def _accepts_or_validation_error(model: type[BaseModel], payload: bytes) -> BaseModel | None:
    try:
        msg = model.model_validate_json(payload)
    except ValidationError as exc:
        assert str(exc)  # a message a person can read
        return None
    # Whatever is accepted survives a round trip unchanged.
    assert model.model_validate_json(msg.model_dump_json()) == msg
    return msg


# --- MQTT payloads --------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@FAST
@given(data=st.data())
def test_protocol_models_refuse_bad_payloads(model: type[BaseModel],
                                             data: st.DataObject) -> None:
    _accepts_or_validation_error(model, data.draw(payloads(model)))


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5, True])
def test_other_schema_versions_are_refused(version: Any) -> None:
    for model, doc in valid_messages().items():
        with pytest.raises(ValidationError, match="schema_version"):
            model.model_validate_json(json.dumps({**doc, "schema_version": version}))


@FAST
@given(junk=st.binary(min_size=5, max_size=2048))
def test_snapshots_that_are_not_jpegs_are_refused(junk: bytes) -> None:
    doc = alert_json(make_alert())
    doc["snapshot_jpeg"] = base64.b64encode(junk).decode()
    try:
        alert = parse_alert(json.dumps(doc))
    except ValidationError as exc:
        assert "snapshot_jpeg" in str(exc)
    else:
        assert alert.snapshot_jpeg is not None and alert.snapshot_jpeg.startswith(b"\xff\xd8")


def test_oversized_and_odd_snapshots() -> None:
    doc = alert_json(make_alert())
    big = b"\xff\xd8" + b"\0" * (MAX_SNAPSHOT_BYTES + 10)
    for value, reason in [(base64.b64encode(big).decode(), "larger than"),
                          ("not base64!", "not valid base64"), (12, "base64 text"),
                          (base64.b64encode(b"\x89PNG\r\n\x1a\n....").decode(), "not a JPEG")]:
        with pytest.raises(ValidationError, match=reason):
            parse_alert(json.dumps({**doc, "snapshot_jpeg": value}))
    # 10 MB of JSON that is not even an alert: refused, not crashed on.
    with pytest.raises(ValidationError):
        parse_alert(b"[" * 5_000_000 + b"]" * 5_000_000)
    with pytest.raises(ValidationError):
        parse_alert(b'{"x": "' + b"a" * 10_000_000 + b'"}')


# --- config loaders -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _yaml_bytes(data: st.DataObject, base: Any) -> bytes:
    """A YAML file: an edit of ``base``, or arbitrary bytes, or ``base`` cut short."""
    text = yaml.safe_dump(base, allow_unicode=True, sort_keys=False).encode()
    kind = data.draw(st.sampled_from(["edit", "edit", "edit", "bytes", "cut", "utf8"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=400))
    if kind == "cut":
        return text[:data.draw(st.integers(0, len(text)))]
    if kind == "utf8":
        at = data.draw(st.integers(0, len(text)))
        return text[:at] + b"\xff\xfe" + text[at:]
    return yaml.safe_dump(mutate(data, base), allow_unicode=True).encode()


def _check_loader(load: Callable[[Path], Any], path: Path, content: bytes,
                  errors: tuple[type[Exception], ...]) -> None:
    path.write_bytes(content)
    try:
        load(path)
    except errors as exc:
        assert str(exc).strip(), "an error without a message"


EDGE_BASE = yaml.safe_load((Path(__file__).parents[1] / "edge/defaults/example.yaml").read_text())


@FAST
@given(data=st.data())
def test_edge_config_loader(scratch: Path, data: st.DataObject) -> None:
    _check_loader(load_config, scratch / "edge.yaml", _yaml_bytes(data, EDGE_BASE), (ConfigError,))


@pytest.fixture(scope="module")
def district_dir(scratch: Path) -> Path:
    folder = scratch / "district"
    shutil.copytree(DEFAULTS_DIR / "district", folder)
    return folder


DISTRICT_BASE = yaml.safe_load((DEFAULTS_DIR / "district" / "district.yaml").read_text())
GRIDS_BASE = json.loads((DEFAULTS_DIR / "district" / "grids.geojson").read_text())


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_district_loader(district_dir: Path, data: st.DataObject) -> None:
    grids = district_dir / "grids.geojson"
    if data.draw(st.booleans()):
        grids.write_text(json.dumps(GRIDS_BASE))
        _check_loader(load_district, district_dir / "district.yaml",
                      _yaml_bytes(data, DISTRICT_BASE), (DistrictError,))
    else:
        (district_dir / "district.yaml").write_text(yaml.safe_dump(DISTRICT_BASE))
        _check_loader(lambda _: load_district(district_dir / "district.yaml"), grids,
                      json.dumps(mutate(data, GRIDS_BASE), allow_nan=True).encode()
                      if data.draw(st.booleans()) else data.draw(st.binary(max_size=300)),
                      (DistrictError,))


TIME_LIMITS_BASE = yaml.safe_load((DEFAULTS_DIR / "time_limits.yaml").read_text())
EVENT_TYPES_BASE = yaml.safe_load((DEFAULTS_DIR / "event_types.yaml").read_text())


@FAST
@given(data=st.data())
def test_time_limits_loader(scratch: Path, data: st.DataObject) -> None:
    _check_loader(load_time_limits, scratch / "limits.yaml",
                  _yaml_bytes(data, TIME_LIMITS_BASE), (ValueError,))


@FAST
@given(data=st.data())
def test_event_types_loader(scratch: Path, data: st.DataObject) -> None:
    _check_loader(load_event_types, scratch / "events.yaml",
                  _yaml_bytes(data, EVENT_TYPES_BASE), (ValueError,))


@pytest.mark.parametrize("zone", ["Asia", "Nowhere/Else", "../etc", ""])
def test_unknown_time_zones_are_config_errors(scratch: Path, zone: str) -> None:
    """``ZoneInfo("Asia")`` raises IsADirectoryError: found by the fuzzer."""
    cases = [(load_config, EDGE_BASE, ["timezone"], ConfigError),
             (load_time_limits, TIME_LIMITS_BASE, ["calendar", "timezone"], ValueError),
             (load_district, DISTRICT_BASE, ["timezone"], DistrictError)]
    shutil.copy(DEFAULTS_DIR / "district" / "grids.geojson", scratch / "grids.geojson")
    for load, base, keys, error in cases:
        doc = copy.deepcopy(base)
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = zone
        path = scratch / "tz.yaml"
        path.write_text(yaml.safe_dump(doc))
        with pytest.raises(error, match=r"time zone|timezone"):
            load(path)


def test_loaders_name_the_file_for_non_utf8(scratch: Path) -> None:
    bad = scratch / "latin1.yaml"
    bad.write_bytes("edge_id: caf\xe9\n".encode("latin-1"))
    for load, error in [(load_config, ConfigError), (load_district, DistrictError),
                        (load_time_limits, ValueError), (load_event_types, ValueError)]:
        with pytest.raises(error, match=r"latin1\.yaml"):
            load(bad)


# --- through a real broker into a running center --------------------------------------------


TOPICS = st.sampled_from([
    "gridwatch/v1/alerts/edge-demo/cam-vn-01", "gridwatch/v1/alerts/edge-x/cam-vn-01",
    "gridwatch/v1/alerts/edge-demo/cam-bj-01", "gridwatch/v1/status/edge-demo",
    "gridwatch/v1/status/edge-demo/cam-vn-01", "gridwatch/v1/heartbeat/edge-demo",
    "gridwatch/v1/config-state/edge-demo", "gridwatch/v1/frames/edge-demo/cam-vn-01",
])


def _fuzz_message(data: st.DataObject) -> tuple[str, bytes]:
    topic = data.draw(TOPICS)
    kind = topic.split("/")[2]
    model = {"alerts": Alert, "status": EdgeStatus if topic.count("/") == 3 else CameraStatus,
             "heartbeat": Heartbeat, "config-state": EdgeConfigState}.get(kind)
    if model is None:  # frames: a JPEG, or not
        return topic, data.draw(st.sampled_from([tiny_jpeg(), b"", b"GIF89a", b"\xff\xd8"]))
    base = valid_messages()[model]
    if model is not Alert:
        base = {**base, "edge_id": "edge-demo"}
        if model is CameraStatus:
            base["camera_id"] = "cam-vn-01"
        if model is EdgeConfigState:
            base["config"] = {"edge_id": "edge-demo", "cameras": []}
    good = json.dumps(base).encode()
    choice = data.draw(st.integers(0, 3))
    if choice == 0:
        return topic, data.draw(st.binary(max_size=256))
    if choice == 1:
        return topic, good[:data.draw(st.integers(0, len(good) - 1))]
    if choice == 2:
        return topic, good.replace(b'"schema_version": 1', b'"schema_version": 2')
    return topic, json.dumps(mutate(data, base), allow_nan=True).encode()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("center"):
            self.records.append(record)


def test_center_dead_letters_fuzzed_messages(center: Any, db_dsn: str) -> None:
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    sent: list[tuple[str, bytes]] = []
    pub = Publisher(center.settings.mqtt.port)
    try:
        @settings(max_examples=80, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def publish_one(data: st.DataObject) -> None:
            topic, payload = _fuzz_message(data)
            pub.send(topic, payload)
            sent.append((topic, payload))

        publish_one()
        # A valid alert after them all: once it is stored, everything before it was handled.
        marker = make_alert()
        pub.alert(marker)

        def stored() -> bool:
            with psycopg.connect(db_dsn) as conn:
                return bool(conn.execute("SELECT 1 FROM alerts WHERE alert_id = %s",
                                         (marker.alert_id,)).fetchone())
        wait_until(stored, 30, "the marker alert")
    finally:
        pub.close()
        logging.getLogger().removeHandler(errors)
    health = plain_http.get(center.url + "/healthz").json()
    assert health["mqtt"] and health["database"], health
    with psycopg.connect(db_dsn) as conn:
        dead = {(t, bytes(p)) for t, p in conn.execute("SELECT topic, payload FROM dead_letters")}
    for topic, payload in sent:
        if "/alerts/" not in topic:
            continue
        try:
            alert = parse_alert(payload)
            ok = topic == alert_topic(alert.edge_id, alert.camera_id)
        except ValidationError:
            ok = False
        if not ok:
            assert (topic, payload) in dead, (topic, payload[:200])
    assert not errors.records, [r.getMessage() for r in errors.records][:5]
    assert uuid.UUID(str(marker.alert_id))

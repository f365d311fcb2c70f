"""MQTT security against a real Mosquitto: per-edge accounts, the ACL, the center's account and
TLS with a CA made at test time (issue 7); client ids bound to accounts and the message size
limits (issue 11)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt
import psycopg
import pytest
import uvicorn

from center.platform.settings import (
    CenterSettings,
    DatabaseSettings,
    HttpSettings,
    MqttSettings,
    MqttTlsSettings,
)
from center.transport.mqtt_auth import (
    CENTER_USER,
    MAX_PACKET_BYTES,
    AuthFiles,
    check_password,
    gen_auth,
    hash_password,
)
from edge.config import BrokerConfig, EdgeConfig
from edge.publish import MqttPublisher
from simulators.local_services import BrokerTls, Mosquitto, free_port
from tests import plain_http
from tests.conftest import RunningCenter, serve_center
from tests.mqtt_helpers import Publisher, close_client, make_alert, wait_until
from tests.tls_helpers import Pki, make_pki
from wire.mqtt_tls import MqttTls
from wire.protocol import MAX_PAYLOAD_BYTES, alert_topic, edge_config_topic

#: An edge that may publish alerts: the district gives it the camera make_alert() uses.
DEMO_EDGE = "edge-demo"


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> AuthFiles:
    return gen_auth(["edge-a", "edge-b", DEMO_EDGE], tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, auth: AuthFiles,
                  pki: Pki) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mqtt-secure"), password_file=auth.password_file,
                       acl_file=auth.acl_file,
                       tls=BrokerTls(cert_file=pki.server_cert, key_file=pki.server_key,
                                     ca_file=pki.ca_cert)).start()
    try:
        yield broker
    finally:
        broker.stop()


def _connect(port: int, username: str | None, password: str | None, *,
             tls: ssl.SSLContext | None = None, timeout: float = 5) -> tuple[mqtt.Client, object]:
    """A paho client and the CONNACK's reason code (None when none came)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    result: dict[str, object] = {}
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, flags: object, rc: object, p: object) -> None:
        result["rc"] = rc
        done.set()

    client.on_connect = on_connect
    client.loop_start()
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        client.loop_stop()
        return client, exc
    done.wait(timeout)
    return client, result.get("rc")


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


# --- password file --------------------------------------------------------------------------


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    path = tmp_path / "p"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "u", "s3cret"], check=True,
                   capture_output=True)
    hashed = path.read_text().strip().split(":", 1)[1]
    assert hashed.startswith("$7$101$")
    assert check_password("s3cret", hashed) and not check_password("other", hashed)
    ours = hash_password("s3cret")
    assert ours.split("$")[1:3] == ["7", "101"] and check_password("s3cret", ours)


def test_gen_auth_files_are_private_and_stable(tmp_path: Path) -> None:
    files = gen_auth(["edge-a"], tmp_path / "out")
    for secret in (files.password_file, files.center_secret, files.edge_secret("edge-a"),
                   tmp_path / "out" / "center.env"):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    first = files.password("edge-a")
    assert first not in files.edge_snippet("edge-a").read_text()
    again = gen_auth(["edge-a", "edge-b"], tmp_path / "out")
    assert again.password("edge-a") == first  # kept, not rotated
    before = again.password("edge-b")
    assert gen_auth(["edge-b"], tmp_path / "out", rotate=True).password("edge-b") != before
    assert not files.edge_secret("edge-a").exists()  # dropped edge loses its account


def test_gen_auth_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gridwatch.cli import cli

    out = tmp_path / "auth"
    result = CliRunner().invoke(cli, ["mqtt", "gen-auth", "--out", str(out),
                                      "--edges", "edge-x,edge-y", "--broker", "10.0.0.5:8883"])
    assert result.exit_code == 0, result.output
    secret = (out / "edges" / "edge-x.secret").read_text().strip()
    assert secret not in result.output
    assert "port: 8883" in (out / "edges" / "edge-x.broker.yaml").read_text()
    lines = (out / "passwd").read_text().split()
    assert sorted(line.split(":")[0] for line in lines) == sorted([CENTER_USER, "edge-x", "edge-y"])
    bad = CliRunner().invoke(cli, ["mqtt", "gen-auth", "--out", str(out), "--edges", "a/b"])
    assert bad.exit_code == 1 and "cannot be an MQTT user name" in bad.output


# --- the broker -----------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "password"), [("edge-a", "wrong"), ("nobody", "x"), (None, None)])
def test_wrong_credentials_refused(secure_broker: Mosquitto, user: str | None,
                                   password: str | None) -> None:
    client, rc = _connect(secure_broker.port, user, password)
    _close(client)
    assert rc is not None and getattr(rc, "is_failure", False), rc


def test_edge_password_file_connects(secure_broker: Mosquitto, auth: AuthFiles) -> None:
    broker = BrokerConfig(port=secure_broker.port, username="edge-a",
                          password_file=auth.edge_secret("edge-a"))
    pub = MqttPublisher("edge-a", broker)
    pub.start()
    try:
        assert pub.connected.wait(10)
    finally:
        pub.close(1)


@contextmanager
def running_center(db_dsn: str, mqtt_settings: MqttSettings) -> Iterator[str]:
    from center.app import create_app

    port = free_port()
    settings = CenterSettings(db=DatabaseSettings(dsn=db_dsn, pool_min=1, pool_max=4),
                              mqtt=mqtt_settings, http=HttpSettings(port=port))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: server.started, 30, "the center to start")
        wait_until(lambda: plain_http.get(url + "/healthz").json()["mqtt"], 15,
                   "the center's MQTT login")
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def test_edge_cannot_use_another_edges_topics(secure_broker: Mosquitto, auth: AuthFiles,
                                              db_dsn: str) -> None:
    center_mqtt = MqttSettings(port=secure_broker.port, username=CENTER_USER,
                               password_file=auth.center_secret,
                               client_id=f"center-{uuid.uuid4().hex[:8]}")
    with running_center(db_dsn, center_mqtt):
        a, rc = _connect(secure_broker.port, DEMO_EDGE, auth.password(DEMO_EDGE))
        assert not getattr(rc, "is_failure", True), rc
        got: list[str] = []
        a.on_message = lambda c, u, m: got.append(m.topic)
        a.subscribe(edge_config_topic("edge-b"), qos=1)  # may subscribe, must never receive
        a.subscribe(edge_config_topic(DEMO_EDGE), qos=1)
        forged = make_alert(edge_id="edge-b")
        a.publish(alert_topic("edge-b", forged.camera_id), forged.model_dump_json(),
                  qos=1).wait_for_publish(5)
        own = make_alert(edge_id=DEMO_EDGE)
        a.publish(alert_topic(DEMO_EDGE, own.camera_id), own.model_dump_json(),
                  qos=1).wait_for_publish(5)

        def stored() -> list[tuple[str, str]]:
            with psycopg.connect(db_dsn) as conn:
                return conn.execute("SELECT alert_id::text, edge_id FROM alerts").fetchall()

        # Same connection, in order: once edge-demo's own alert is stored, the forged one would
        # have been too.
        wait_until(stored, 10, "edge-demo's own alert")
        assert stored() == [(str(own.alert_id), DEMO_EDGE)]
        with psycopg.connect(db_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0

    # The center's account pushes configs; each edge reads only its own. (Once the center has
    # stopped: its account has one connection, whose client id the broker binds to it.)
    async def push() -> None:
        async with aiomqtt.Client("127.0.0.1", secure_broker.port,
                                  **center_mqtt.client_kwargs()) as c:
            for edge in ("edge-b", DEMO_EDGE):
                await c.publish(edge_config_topic(edge), b"{}", qos=1)
    asyncio.run(push())
    wait_until(lambda: got, 5, "edge-demo's config")  # in order: edge-b's would come first
    assert got == [edge_config_topic(DEMO_EDGE)]
    # An edge may not push configs.
    a.publish(edge_config_topic("edge-b"), b"{}", qos=1).wait_for_publish(5)
    _close(a)


# --- TLS ------------------------------------------------------------------------------------


def _tls_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    return ctx


def test_tls_works_and_plain_is_refused_on_the_tls_port(secure_broker: Mosquitto,
                                                        auth: AuthFiles, pki: Pki) -> None:
    assert secure_broker.tls_port is not None
    client, rc = _connect(secure_broker.tls_port, "edge-a", auth.password("edge-a"),
                          tls=_tls_context(pki))
    _close(client)
    assert rc is not None and not getattr(rc, "is_failure", True), rc

    client, rc = _connect(secure_broker.tls_port, "edge-a", auth.password("edge-a"), timeout=3)
    _close(client)
    assert rc is None or isinstance(rc, Exception) or getattr(rc, "is_failure", False), rc

    # A CA that did not sign the broker's certificate: the handshake fails.
    other = make_pki(Path(os.path.dirname(pki.ca_cert)) / "other", "someone else's CA")
    client, rc = _connect(secure_broker.tls_port, "edge-a", auth.password("edge-a"),
                          tls=ssl.create_default_context(cafile=str(other.ca_cert)), timeout=3)
    _close(client)
    assert rc is None or isinstance(rc, Exception), rc


def test_edge_and_center_tls_options(secure_broker: Mosquitto, auth: AuthFiles,
                                     pki: Pki) -> None:
    assert secure_broker.tls_port is not None
    broker = BrokerConfig(port=secure_broker.tls_port, username="edge-a",
                          password_file=auth.edge_secret("edge-a"),
                          tls=MqttTls(ca_file=pki.ca_cert))
    pub = MqttPublisher("edge-a", broker)
    pub.start()
    try:
        assert pub.connected.wait(10)
    finally:
        pub.close(1)

    settings = MqttSettings(port=secure_broker.tls_port, username=CENTER_USER,
                            password_file=auth.center_secret,
                            tls=MqttTlsSettings(enabled=True, ca_file=pki.ca_cert))

    async def roundtrip() -> bytes:
        async with aiomqtt.Client("127.0.0.1", settings.port, **settings.client_kwargs()) as c:
            await c.subscribe("gridwatch/v1/config/edge-a", qos=1)
            await c.publish("gridwatch/v1/config/edge-a", b"tls", qos=1)
            async for message in c.messages:
                return bytes(message.payload)  # type: ignore[arg-type]
        return b""

    assert asyncio.run(asyncio.wait_for(roundtrip(), 10)) == b"tls"


# --- client ids bound to accounts -----------------------------------------------------------


@pytest.fixture
def bound_broker(tmp_path: Path) -> Iterator[tuple[AuthFiles, Mosquitto]]:
    """Accounts for the demo's edge and another one, on a broker of this test's own (so the
    center's persistent session starts empty)."""
    files = gen_auth([DEMO_EDGE, "edge-b"], tmp_path / "auth")
    with Mosquitto(tmp_path / "mqtt", password_file=files.password_file,
                   acl_file=files.acl_file) as broker:
        yield files, broker


def _logins(broker: Mosquitto, user: str) -> int:
    """How many connections the broker let in for ``user`` (its log, whatever the client id)."""
    return len(re.findall(rf"New client connected from .* u'{re.escape(user)}'\)",
                          broker.log_path.read_text(errors="replace")))


def _stored_count(dsn: str, edge_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM alerts WHERE edge_id = %s",
                                (edge_id,)).fetchone()[0])


@pytest.mark.parametrize("hijack_id", [CENTER_USER, f"gridwatch-edge-{DEMO_EDGE}", DEMO_EDGE])
def test_an_account_cannot_take_over_another_accounts_session(
        bound_broker: tuple[AuthFiles, Mosquitto], db_dsn: str, hijack_id: str) -> None:
    """edge-b connects with the center's client id (or edge-demo's, as it was and as it is)
    and a persistent session, reconnecting whenever it is thrown off, as the attack of issue 11
    did. The broker gives it a session of its own: the center and edge-demo are never
    disconnected, edge-b receives nothing, and every alert edge-demo sends is stored."""
    auth, broker = bound_broker
    # The center's default client id, gridwatch-center, and its persistent session.
    center_mqtt = MqttSettings(port=broker.port, username=CENTER_USER,
                               password_file=auth.center_secret)
    with running_center(db_dsn, center_mqtt):
        edge = MqttPublisher(DEMO_EDGE, BrokerConfig(
            port=broker.port, username=DEMO_EDGE, password_file=auth.edge_secret(DEMO_EDGE)))
        edge.start()
        attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=hijack_id,
                               clean_session=False)
        attacker.username_pw_set("edge-b", auth.password("edge-b"))
        sessions: list[bool] = []
        stolen: list[str] = []
        attacker.on_connect = lambda c, u, flags, rc, p: sessions.append(flags.session_present)
        attacker.on_message = lambda c, u, m: stolen.append(m.topic)
        try:
            assert edge.connected.wait(10)
            attacker.connect("127.0.0.1", broker.port, keepalive=10)
            attacker.loop_start()  # paho reconnects by itself when thrown off
            wait_until(lambda: sessions, 10, "edge-b's CONNACK")
            alerts = [make_alert(edge_id=DEMO_EDGE) for _ in range(20)]
            for alert in alerts:
                edge.send(alert)
            wait_until(lambda: _stored_count(db_dsn, DEMO_EDGE) == len(alerts), 20,
                       "every alert of edge-demo stored by the center")
            assert edge.drain(10)
        finally:
            close_client(attacker)
            edge.close(2)
        assert sessions == [False], "edge-b must get a fresh session of its own, once"
        assert stolen == []
        assert _logins(broker, CENTER_USER) == 1, "the center was thrown off the broker"
        assert _logins(broker, DEMO_EDGE) == 1, "edge-demo was thrown off the broker"
        assert "already connected" not in broker.log_path.read_text(errors="replace")


def test_a_zone_push_keeps_the_centers_one_session(
        bound_broker: tuple[AuthFiles, Mosquitto], db_dsn: str) -> None:
    """The center's account has one connection on a broker that binds client ids: a zone
    pushed from the engineer API goes out on the ingest connection (a second connection under
    the center's account would take over its persistent session). The edge gets the config,
    the center is never thrown off, and alerts keep arriving."""
    auth, broker = bound_broker
    center_mqtt = MqttSettings(port=broker.port, username=CENTER_USER,
                               password_file=auth.center_secret)
    settings = CenterSettings(db=DatabaseSettings(dsn=db_dsn, pool_min=1, pool_max=4),
                              mqtt=center_mqtt, http=HttpSettings(port=free_port()))
    pushed: list[bytes] = []
    edge = MqttPublisher(DEMO_EDGE, BrokerConfig(
        port=broker.port, username=DEMO_EDGE, password_file=auth.edge_secret(DEMO_EDGE)),
        on_config=pushed.append)
    zone = {"id": "pavement", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]],
            "rules": [{"type": "illegal_parking"}]}
    config = EdgeConfig.model_validate({
        "edge_id": DEMO_EDGE, "broker": {"port": broker.port},
        "cameras": [{"id": "cam-vn-01", "source": "rtsp://camera.invalid/stream",
                     "zones": [zone]}]})
    with serve_center(settings) as center:
        edge.start()
        try:
            assert edge.connected.wait(10)
            edge.config_state(config)
            engineer = center.client("eng-01")
            wait_until(lambda: engineer.get(f"/api/v1/edges/{DEMO_EDGE}/config"
                                            ).status_code == 200, 10, "edge-demo's config")
            r = engineer.put("/api/v1/cameras/cam-vn-01/zones",
                             json={"zones": [{**zone, "dwell_s": 42}]})
            assert r.status_code == 200, r.text
            wait_until(lambda: pushed, 10, "the pushed config at edge-demo")
            assert json.loads(pushed[-1])["cameras"][0]["zones"][0]["dwell_s"] == 42
            edge.send(make_alert(edge_id=DEMO_EDGE))
            wait_until(lambda: _stored_count(db_dsn, DEMO_EDGE) == 1, 10, "an alert after it")
        finally:
            edge.close(2)
    assert _logins(broker, CENTER_USER) == 1, "the center was thrown off the broker"


def test_generated_broker_config_binds_client_ids_and_limits_sizes(tmp_path: Path) -> None:
    """The drop-in ``gen-auth`` writes for a production broker: every listener binds client
    ids to accounts (a listener option in Mosquitto 2.0, so right below its line) and the size
    limits are set."""
    gen_auth(["edge-a"], tmp_path, broker_port=8883)
    lines = (tmp_path / "mosquitto-auth.conf").read_text().splitlines()
    listeners = [i for i, line in enumerate(lines) if line.startswith("listener ")]
    assert [lines[i] for i in listeners] == ["listener 8883"]
    assert all(lines[i + 1] == "use_username_as_clientid true" for i in listeners)
    assert f"message_size_limit {MAX_PAYLOAD_BYTES}" in lines
    assert f"max_packet_size {MAX_PACKET_BYTES}" in lines
    assert "allow_anonymous false" in lines


# --- message size ---------------------------------------------------------------------------


def test_oversized_messages_are_refused_by_the_broker(center: RunningCenter,
                                                      mqtt_broker: Mosquitto,
                                                      db_dsn: str) -> None:
    """A payload over the protocol's largest (an alert with the largest snapshot) is dropped by
    the broker, its QoS 1 flow completed so an edge's outbox moves on; a packet over
    ``max_packet_size`` costs the sender its connection before the broker buffers it. The
    center sees neither and keeps storing what comes next."""
    topic = alert_topic(DEMO_EDGE, "cam-vn-01")
    sender = Publisher(mqtt_broker.port)
    dropped = threading.Event()
    sender.client.on_disconnect = lambda c, u, f, rc, p: dropped.set()
    try:
        sender.send(topic, b"x" * (MAX_PAYLOAD_BYTES + 1))  # acknowledged by the broker
        after = make_alert(edge_id=DEMO_EDGE)
        sender.alert(after)  # same connection, so it arrives after the big one would have
        wait_until(lambda: _stored_count(db_dsn, DEMO_EDGE) == 1, 15, "the alert after it")
        sender.client.publish(topic, b"x" * (MAX_PACKET_BYTES + 1), qos=1)
        assert dropped.wait(15), "the broker kept a client that sent an oversized packet"
    finally:
        sender.close()
    later = Publisher(mqtt_broker.port)
    try:
        later.alert(make_alert(edge_id=DEMO_EDGE))
        wait_until(lambda: _stored_count(db_dsn, DEMO_EDGE) == 2, 15, "an alert after both")
    finally:
        later.close()
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    assert plain_http.get(center.url + "/healthz").json()["mqtt"] is True

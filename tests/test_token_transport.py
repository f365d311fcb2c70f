"""Issue 11: bearer tokens never ride in URLs. The websocket takes its token as the first
message; pictures and downloads take short-lived signed URLs that open only their own resource,
for their own person, until they expire or the person's tokens are revoked. All against the
real center (uvicorn, PostgreSQL, the broker)."""

from __future__ import annotations

import json
import logging
import time

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from center.services import auth
from center.transport.push import AUTH_DEADLINE_S
from tests import plain_http
from tests.conftest import RunningCenter
from tests.mqtt_helpers import Publisher, make_alert, wait_until


def _close_code(ws: ClientConnection, timeout: float) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def test_websocket_refuses_a_token_in_the_url(center: RunningCenter) -> None:
    url = f"{center.ws_url}?token={center.token('op-01')}"
    with connect(url, open_timeout=5) as ws:
        assert _close_code(ws, 5) == 4401


def test_websocket_takes_the_token_as_its_first_message_within_a_deadline(
        center: RunningCenter) -> None:
    with center.ws("op-01") as ws:
        hello = json.loads(ws.recv(5))
        assert hello["type"] == "hello" and hello["data"]["person_id"] == "op-01"
    for first in ('{"type": "read", "ticket_id": 1}', "not json", '{"type": "auth"}'):
        with connect(center.ws_url, open_timeout=5) as ws:
            ws.send(first)
            assert _close_code(ws, 5) == 4401, first
    started = time.monotonic()
    with connect(center.ws_url, open_timeout=5) as ws:  # says nothing
        assert _close_code(ws, AUTH_DEADLINE_S + 5) == 4401
    assert AUTH_DEADLINE_S - 0.5 < time.monotonic() - started < AUTH_DEADLINE_S + 3


def _alert_with_snapshot(center: RunningCenter, mqtt_broker) -> str:
    pub = Publisher(mqtt_broker.port)
    alert = make_alert()
    pub.alert(alert)
    pub.close()
    url = f"/api/v1/alerts/{alert.alert_id}/snapshot.jpg"
    wait_until(lambda: center.client("op-01").get(url).status_code == 200, what="snapshot")
    return url


def _sign(center: RunningCenter, person_id: str, *urls: str) -> list[str]:
    r = center.client(person_id).post("/api/v1/auth/signed-urls", json={"urls": list(urls)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 < body["expires_at"] - time.time() <= auth.SIGNED_URL_TTL_S + auth.SIGNED_URL_STEP_S
    return body["urls"]


def test_pictures_and_downloads_refuse_a_token_in_the_url(center: RunningCenter,
                                                          mqtt_broker) -> None:
    snapshot = _alert_with_snapshot(center, mqtt_broker)
    token = center.token("op-01")
    for url in (snapshot, "/api/v1/indicators?format=csv", "/api/v1/rankings/grids?format=csv"):
        r = plain_http.get(center.url + url, params={"token": token})
        assert r.status_code == 401, (url, r.status_code)
        assert "not accepted" in r.json()["detail"]


def test_a_signed_url_opens_only_its_own_resource(center: RunningCenter, mqtt_broker) -> None:
    snapshot = _alert_with_snapshot(center, mqtt_broker)
    other = _alert_with_snapshot(center, mqtt_broker)
    csv = "/api/v1/indicators?level=grid&format=csv"
    signed_snapshot, signed_csv = _sign(center, "op-01", snapshot, csv)
    assert "token" not in signed_snapshot and signed_snapshot.startswith(snapshot + "?sig=")

    r = plain_http.get(center.url + signed_snapshot)  # no header: the URL alone
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert plain_http.get(center.url + signed_csv).text.startswith("\ufeff")  # the CSV, for Excel
    # The same signature on another picture, or with another query, opens nothing.
    sig = signed_snapshot.split("?", 1)[1]
    assert plain_http.get(f"{center.url}{other}?{sig}").status_code == 401
    tampered = signed_csv.replace("level=grid", "level=district")
    assert tampered != signed_csv and plain_http.get(center.url + tampered).status_code == 401
    assert plain_http.get(center.url + signed_csv + "&extra=1").status_code == 401
    # Forged: a signature for another person.
    forged = signed_snapshot.replace(".op-01", ".admin-01")
    assert forged != signed_snapshot and plain_http.get(center.url + forged).status_code == 401
    # Only API paths are signed.
    r = center.client("op-01").post("/api/v1/auth/signed-urls",
                                    json={"urls": ["https://evil.example/api/v1/x"]})
    assert r.status_code == 422
    assert plain_http.post(center.url + "/api/v1/auth/signed-urls",
                           json={"urls": [snapshot]}).status_code == 401  # needs a login


def test_a_signed_url_is_its_persons_view(center: RunningCenter, mqtt_broker) -> None:
    """A worker's signed URL of the district indicators is refused as the worker would be."""
    (signed,) = _sign(center, "w-0121", "/api/v1/indicators?format=csv")
    assert plain_http.get(center.url + signed).status_code == 403


def _secret(center: RunningCenter) -> str:
    with psycopg.connect(center.settings.db.dsn) as conn:
        return conn.execute("SELECT value FROM server_secrets WHERE name = %s",
                            (auth.SECRET_NAME,)).fetchone()[0]


def test_a_signed_url_dies_when_it_expires_or_the_tokens_are_revoked(
        center: RunningCenter, mqtt_broker) -> None:
    snapshot = _alert_with_snapshot(center, mqtt_broker)
    # Signed six minutes ago by the center's own key: expired by now.
    old, exp = auth.sign_url(_secret(center), snapshot, "op-01", 0,
                             now=time.time() - auth.SIGNED_URL_TTL_S - auth.SIGNED_URL_STEP_S)
    assert exp < time.time()
    r = plain_http.get(center.url + old)
    assert r.status_code == 401 and "expired" in r.json()["detail"]

    (signed,) = _sign(center, "op-01", snapshot)
    assert plain_http.get(center.url + signed).status_code == 200
    center.client("op-01").post("/api/v1/auth/logout-all").raise_for_status()
    r = plain_http.get(center.url + signed)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_signed_urls_are_scrubbed_from_logs() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:1", "GET",
                               "/api/v1/alerts/x/snapshot.jpg?sig=123.0.abc.op-01", "1.1", 200),
                               None)
    assert auth.RedactTokens().filter(record)
    assert "sig=[redacted]" in record.getMessage() and "abc" not in record.getMessage()

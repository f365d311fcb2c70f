"""Bearer tokens die with the password: a password change (the API, or an admin's
``gridwatch center set-password``) and "log out everywhere" revoke every token issued before,
on REST and on the websocket (open sockets are closed with 4401), in this center process and
in any other on the same database, also after a restart (docs/security.md)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from click.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from center.services import auth
from tests import plain_http
from tests.conftest import RunningCenter, center_settings_for, password_for, serve_center
from tests.mqtt_helpers import wait_until


def _login(center: RunningCenter, person_id: str, password: str | None = None) -> httpx.Response:
    return plain_http.post(center.url + "/api/v1/auth/login",
                           json={"person_id": person_id,
                            "password": password or password_for(person_id)})


def _token(center: RunningCenter, person_id: str, password: str | None = None) -> str:
    r = _login(center, person_id, password)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _me(center: RunningCenter, token: str) -> httpx.Response:
    return plain_http.get(center.url + "/api/v1/auth/me",
                          headers={"Authorization": f"Bearer {token}"})


def _revoked(center: RunningCenter, token: str) -> bool:
    r = _me(center, token)
    if r.status_code == 200:
        return False
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
    assert "revoked" in r.json()["detail"], r.text
    return True


@pytest.fixture
def center_settings() -> dict[str, Any]:
    """Password changes count against the login limit (5/minute): these tests log in often."""
    return {"auth": {"login_rate_person": "100/minute"}}


@contextlib.contextmanager
def _ws(center: RunningCenter, token: str) -> Iterator[ClientConnection]:
    with center.ws(token=token) as ws:
        assert json.loads(ws.recv(5))["type"] == "hello"
        yield ws


def _closed_with(ws: ClientConnection, timeout: float = 5) -> int | None:
    """The close code the server sends (messages before it are skipped)."""
    deadline = time.monotonic() + timeout

    def read_until_closed() -> None:
        while True:
            ws.recv(max(0.1, deadline - time.monotonic()))

    with pytest.raises(ConnectionClosed) as closed:
        read_until_closed()
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def _refused_on_connect(center: RunningCenter, token: str) -> int | None:
    with center.ws(token=token) as ws:
        return _closed_with(ws)


def test_changing_the_password_revokes_every_earlier_token(center: RunningCenter) -> None:
    phone, stolen = _token(center, "w-0111"), _token(center, "w-0111")
    other = _token(center, "w-0112")  # someone else's: untouched
    assert _me(center, phone).status_code == 200 and _me(center, stolen).status_code == 200
    with _ws(center, stolen) as socket:
        _change_password(center, phone, stolen, other, socket)


def _change_password(center: RunningCenter, phone: str, stolen: str, other: str,
                     socket: ClientConnection) -> None:
    url = center.url + "/api/v1/auth/password"
    auth_h = {"Authorization": f"Bearer {phone}"}
    r = plain_http.post(url, headers=auth_h, json={"current_password": "wrong guess",
                                              "new_password": "a brand new password"})
    assert r.status_code == 403 and not _revoked(center, phone)  # nothing changed
    r = plain_http.post(url, headers=auth_h, json={"current_password": password_for("w-0111"),
                                              "new_password": "short"})
    assert r.status_code == 422 and not _revoked(center, phone)
    assert plain_http.post(url, json={"current_password": password_for("w-0111"),
                                 "new_password": "a brand new password"}).status_code == 401

    r = plain_http.post(url, headers=auth_h, json={"current_password": password_for("w-0111"),
                                              "new_password": "a brand new password"})
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    assert r.json()["person"]["id"] == "w-0111"

    # every token from before, the one that asked included, is refused at once
    assert _revoked(center, phone) and _revoked(center, stolen)
    assert plain_http.get(center.url + "/api/v1/tickets",
                          headers={"Authorization": f"Bearer {stolen}"}).status_code == 401
    assert _me(center, fresh).json()["id"] == "w-0111"
    assert _me(center, other).status_code == 200
    # the socket the stolen token opened is closed, and it cannot open another
    assert _closed_with(socket) == 4401
    assert _refused_on_connect(center, stolen) == 4401
    with _ws(center, fresh):
        pass
    # the old password is gone, the new one logs in (and its token works)
    assert _login(center, "w-0111").status_code == 401
    assert _me(center, _token(center, "w-0111", "a brand new password")).status_code == 200
    with psycopg.connect(center.settings.db.dsn) as conn:
        row = conn.execute("SELECT generation, password_changed_at IS NOT NULL FROM"
                           " person_tokens WHERE person_id = 'w-0111'").fetchone()
        ledger = conn.execute("SELECT actor_id, scope FROM ops_ledger"
                              " WHERE action = 'password_changed'").fetchall()
    assert row == (1, True) and ledger == [("w-0111", "w-0111")]


def test_an_admin_reset_from_the_cli_revokes_tokens(center: RunningCenter, tmp_path) -> None:
    """``gridwatch center set-password`` runs outside the center (here: in the test's thread,
    on its own database connection); the center hears of it through NOTIFY."""
    from gridwatch.cli import cli

    before = _token(center, "w-0122")
    untouched = _token(center, "w-0121")
    env = {"GRIDWATCH_DB__DSN": center.settings.db.dsn}
    with _ws(center, before) as socket:
        r = CliRunner().invoke(cli, ["center", "set-password", "w-0122"],
                               input="reset by admin\n", env=env)
        assert r.exit_code == 0, r.output
        wait_until(lambda: _revoked(center, before), timeout=5, what="the old token refused")
        assert _closed_with(socket) == 4401
    assert _refused_on_connect(center, before) == 4401
    assert _me(center, untouched).status_code == 200
    assert _login(center, "w-0122").status_code == 401
    after = _token(center, "w-0122", "reset by admin")
    assert _me(center, after).status_code == 200

    # gen-passwords gives new passwords: everybody's tokens go
    r = CliRunner().invoke(cli, ["center", "gen-passwords", "--out",
                                 str(tmp_path / "people.tsv")], env=env)
    assert r.exit_code == 0, r.output
    wait_until(lambda: _revoked(center, after) and _revoked(center, untouched), timeout=5,
               what="everyone's tokens refused")


def test_logout_everywhere(center: RunningCenter) -> None:
    laptop, phone = _token(center, "op-01"), _token(center, "op-01")
    with _ws(center, phone) as socket:
        r = plain_http.post(center.url + "/api/v1/auth/logout-all",
                            headers={"Authorization": f"Bearer {laptop}"})
        assert r.status_code == 200 and r.json() == {"person_id": "op-01", "revoked": True}
        assert _revoked(center, laptop) and _revoked(center, phone)
        assert _closed_with(socket) == 4401  # the wall feed: everything until then
    again = _token(center, "op-01")  # the password still works
    assert _me(center, again).status_code == 200

    # an admin logs out someone who lost their phone; nobody else may
    lost = _token(center, "w-0111")
    worker = {"Authorization": f"Bearer {_token(center, 'w-0112')}"}
    r = plain_http.post(center.url + "/api/v1/auth/logout-all", headers=worker,
                        json={"person_id": "w-0111"})
    assert r.status_code == 403 and not _revoked(center, lost)
    admin = {"Authorization": f"Bearer {_token(center, 'admin-01')}"}
    r = plain_http.post(center.url + "/api/v1/auth/logout-all", headers=admin,
                        json={"person_id": "nobody"})
    assert r.status_code == 404
    r = plain_http.post(center.url + "/api/v1/auth/logout-all", headers=admin,
                        json={"person_id": "w-0111"})
    assert r.status_code == 200 and _revoked(center, lost)
    assert _me(center, admin["Authorization"].split()[1]).status_code == 200
    assert not _revoked(center, worker["Authorization"].split()[1])


def test_other_processes_and_restarts_refuse_revoked_tokens(center: RunningCenter,
                                                            mqtt_broker) -> None:
    """Two centers on one database: a revocation on one is refused by the other (NOTIFY), and
    a center started after it refuses it from the start."""
    settings = center_settings_for(center.settings.db.dsn, mqtt_broker.port)
    first = _token(center, "l-011")
    with serve_center(settings) as second:
        assert _me(second, first).status_code == 200  # one secret per database: shared
        r = plain_http.post(center.url + "/api/v1/auth/logout-all",
                            headers={"Authorization": f"Bearer {first}"})
        assert r.status_code == 200
        wait_until(lambda: _revoked(second, first), timeout=5, what="the second center to hear")
        fresh = _token(second, "l-011")
        assert _me(center, fresh).status_code == 200
    with serve_center(center_settings_for(center.settings.db.dsn, mqtt_broker.port)) as third:
        assert _revoked(third, first)  # loaded at start-up, before the first request
        assert _me(third, fresh).status_code == 200


def test_a_lost_listener_connection_catches_up(center: RunningCenter) -> None:
    """A revocation made while the center's listener is disconnected is picked up when it
    reconnects (everything is read again), a couple of seconds later."""
    token = _token(center, "d-urban-01")
    dsn = center.settings.db.dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        wait_until(lambda: conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (auth.LISTENER_NAME,)).fetchone()[0] == 1, what="the listener")
        killed = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE application_name = %s", (auth.LISTENER_NAME,)).fetchall()
        assert killed == [(True,)]
        conn.execute("UPDATE district_people SET password_hash = 'reset by sql'"
                     " WHERE id = 'd-urban-01'")
    wait_until(lambda: _revoked(center, token), timeout=10, what="the revocation after a reconnect")


def test_tokens_from_before_generations(center: RunningCenter) -> None:
    """A token without ``gen`` (issued before this release) counts as generation 0: it works
    until the person's first revocation; a forged or malformed ``gen`` is refused."""
    with psycopg.connect(center.settings.db.dsn) as conn:
        secret = conn.execute("SELECT value FROM server_secrets WHERE name = %s",
                              (auth.SECRET_NAME,)).fetchone()[0]
    now = int(time.time())
    old = jwt.encode({"sub": "eng-01", "iat": now, "exp": now + 600}, secret, algorithm="HS256")
    assert _me(center, old).status_code == 200
    for bad in (-1, "1", True, 1.5):
        weird = jwt.encode({"sub": "eng-01", "iat": now, "exp": now + 600, "gen": bad}, secret,
                           algorithm="HS256")
        assert _me(center, weird).status_code == 401
    plain_http.post(center.url + "/api/v1/auth/logout-all",
                    headers={"Authorization": f"Bearer {old}"})
    assert _revoked(center, old)


def test_deactivating_a_person_revokes_their_tokens(center: RunningCenter) -> None:
    """A person dropped from the district (deactivated) and later taken back does not get their
    old tokens back; a new login works."""
    old = _token(center, "w-0112")
    assert _me(center, old).status_code == 200
    with psycopg.connect(center.settings.db.dsn) as conn:
        conn.execute("UPDATE district_people SET active = false WHERE id = 'w-0112'")
    with psycopg.connect(center.settings.db.dsn) as conn:
        conn.execute("UPDATE district_people SET active = true WHERE id = 'w-0112'")
    wait_until(lambda: _revoked(center, old), 5, "the old token refused")
    assert _me(center, _token(center, "w-0112")).status_code == 200

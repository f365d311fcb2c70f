"""Real services for the tests: a private PostgreSQL and Mosquitto on free loopback ports.

Set GRIDWATCH_TEST_DSN to use an existing PostgreSQL server instead (its user must be allowed
to create databases). Each test that needs a database gets a fresh one cloned from a migrated
template, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from center.platform.clock import Clock
from center.platform.settings import CenterSettings, DatabaseSettings, HttpSettings, MqttSettings
from center.store.migrate import migrate
from simulators.local_services import Mosquitto, Postgres, free_port
from tests.mqtt_helpers import Publisher, clear_retained, forget_session, make_alert
from tests.plain_http import TLS_CONTEXT  # the fixture clients' too: see there
from tests.waiting import wait_until
from wire.paths import shared_file

# The page tests' ``browser`` fixture, for every test module that asks for it (importing a
# fixture into a test module instead is what pytest's docs advise against).
pytest_plugins = ["tests.browser"]

TEMPLATE_DB = "gridwatch_template"


def shared(relative: str) -> Path:
    """A file from ../shared; a missing one fails the test with its path (never a skip)."""
    try:
        return shared_file(relative)
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("GRIDWATCH_TEST_DSN")
    if existing:
        yield existing
        return
    server = Postgres(tmp_path_factory.mktemp("pg") / "data").start()
    try:
        _commit_without_flush(server.dsn("postgres"))
        yield server.dsn("postgres")
    finally:
        server.stop("immediate")


def _commit_without_flush(admin_dsn: str) -> None:
    """The session's own throwaway cluster commits without waiting for its WAL to reach the
    disk (``synchronous_commit = off``): a commit that writes took 2.2-3.2 ms on this box's
    disk, 0.3 ms without waiting, and every center commits on its start and on each batch it
    ingests. A commit is still visible to every other connection at once; only a crash of
    this PostgreSQL itself could lose the last ones, and no test crashes it (the tests that
    stop PostgreSQL start their own cluster). A GRIDWATCH_TEST_DSN server keeps its setting."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def pg_template(pg_admin_dsn: str) -> str:
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    template_dsn = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=TEMPLATE_DB)
    migrate(template_dsn, commit=True)
    return TEMPLATE_DB


@contextlib.contextmanager
def cloned_database(admin_dsn: str, template: str) -> Iterator[str]:
    """A fresh database cloned from the migrated template, dropped when the block ends."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_dsn(pg_admin_dsn: str, pg_template: str) -> Iterator[str]:
    with cloned_database(pg_admin_dsn, pg_template) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mqtt")).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(autouse=True)
def _fresh_broker_state(request: pytest.FixtureRequest) -> None:
    """Tests share one broker: each starts without the retained messages earlier tests' edges
    left there (see ``clear_retained``)."""
    if "mqtt_broker" in request.fixturenames:
        clear_retained(request.getfixturevalue("mqtt_broker").port)


def password_for(person_id: str) -> str:
    """The known password the ``center`` fixture gives each person of the district."""
    return f"test-password-{person_id}"


#: The fixture's password hashes: argon2id as the center stores them, at a token cost.
#: The center verifies a hash at the cost written in it, so the argon2 check of a test login
#: takes a tenth of a millisecond instead of ~0.5 s of a shared 2-core machine (tests log in
#: as two or three people each). The production cost is exercised where it is the point:
#: set-password and gen-passwords in test_auth (the center's ``hash_password``, then a login
#: through the API) and the hashing-queue tests of test_http_hardening
#: (``give_production_hash``).
_CHEAP_HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


@cache
def _password_hash(person_id: str) -> str:
    return _CHEAP_HASHER.hash(password_for(person_id))


def set_known_passwords(dsn: str) -> None:
    """Every person of the district gets ``password_for(id)``, in one round trip."""
    with psycopg.connect(dsn) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM district_people")]
        conn.execute("UPDATE district_people p SET password_hash = k.hash"
                     " FROM unnest(%s::text[], %s::text[]) AS k(id, hash) WHERE p.id = k.id",
                     (ids, [_password_hash(i) for i in ids]))


def give_production_hash(dsn: str, person_id: str) -> None:
    """Store ``password_for(person_id)`` hashed by the center's own ``hash_password``, at the
    production cost: for tests about what a real argon2 check costs the server."""
    from center.services.auth import hash_password

    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE district_people SET password_hash = %s WHERE id = %s",
                     (hash_password(password_for(person_id)), person_id))


@dataclass
class RunningCenter:
    url: str
    settings: CenterSettings
    app: object
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)
    _clients: dict[Any, Any] = field(default_factory=dict, repr=False)
    _own: Any = field(default=None, repr=False)

    def _http(self) -> Any:
        """The fixture's own client (logins, health checks): apart from ``client()``, so the
        tests' public client is only ever what they made of it."""
        import httpx

        if self._own is None:
            self._own = httpx.Client(base_url=self.url, verify=TLS_CONTEXT)
        return self._own

    @property
    def ws_url(self) -> str:
        """The websocket's URL; ``ws(person)`` connects and logs in."""
        return self.url.replace("http://", "ws://") + "/ws"

    def token(self, person_id: str) -> str:
        """A bearer token for a person, by logging in through the API (once per test)."""
        if person_id not in self._tokens:
            r = self._http().post("/api/v1/auth/login",
                                  json={"person_id": person_id,
                                        "password": password_for(person_id)})
            assert r.status_code == 200, f"login {person_id}: {r.status_code} {r.text}"
            self._tokens[person_id] = r.json()["access_token"]
        return self._tokens[person_id]

    def headers(self, person_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(person_id)}"}

    def client(self, person_id: str | None = None, **kw: Any) -> Any:
        """An ``httpx.Client`` on the center (``base_url`` set; absolute URLs work too), logged
        in as ``person_id`` (None: the public); one per person and test unless ``kw``."""
        import httpx

        key = (person_id, tuple(sorted(kw.items())))
        if key not in self._clients:
            headers = self.headers(person_id) if person_id else {}
            self._clients[key] = httpx.Client(base_url=self.url, headers=headers,
                                              **{"verify": TLS_CONTEXT} | kw)
        return self._clients[key]

    def dispatched_case(self, mqtt_port: int) -> dict[str, Any]:
        """A camera case at the demo place (0506, cam-vn-01 in micro-grid mg-011) from a real
        alert through the broker, as the center has it once dispatched to w-0111: where most
        loop and page tests start."""
        pub = Publisher(mqtt_port)
        pub.alert(make_alert())
        pub.close()

        def dispatched() -> dict[str, Any] | None:
            found = self.client("op-01").get("/api/v1/tickets?open=true").json()
            return found[0] if found and found[0]["state"] == "dispatched" else None

        return wait_until(dispatched, what="a dispatched ticket")

    @contextlib.contextmanager
    def ws(self, person_id: str | None = None, *, token: str | None = None,
           **params: str) -> Iterator[Any]:
        """A websocket logged in as ``person_id`` (or with ``token``): connected and its auth
        message sent (docs/protocol.md), so the server's next word is its hello, or a close
        (4401/4403). ``params`` go in the URL (``worker_id``)."""
        from urllib.parse import urlencode

        from websockets.sync.client import connect

        from center.transport.push import auth_message

        url = f"{self.ws_url}?{urlencode(params)}" if params else self.ws_url
        with connect(url, open_timeout=5) as ws:
            ws.send(auth_message(token if token is not None else self.token(person_id or "")))
            yield ws

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        if self._own is not None:
            self._own.close()


@pytest.fixture
def center_clock() -> Clock | None:
    """The clock the ``center`` fixture's app runs on; a test module that overrides this with a
    ManualClock gets a center whose timers it fires itself (``scheduler.fire_due``)."""
    return None


@pytest.fixture
def center_settings() -> dict[str, Any]:
    """Extra ``CenterSettings`` fields for the ``center`` fixture (a module overrides this:
    tight rate limits, CORS origins, a short token lifetime)."""
    return {}


def center_settings_for(db_dsn: str, mqtt_port: int, **extra: Any) -> CenterSettings:
    """Settings for a test center on a free HTTP port, with a unique MQTT client id: each test's
    center gets its own persistent session."""
    return CenterSettings(
        db=DatabaseSettings(dsn=db_dsn, pool_min=1, pool_max=4),
        mqtt=MqttSettings(port=mqtt_port, client_id=f"center-{uuid.uuid4().hex[:8]}"),
        http=HttpSettings(port=free_port()), **extra)


@contextlib.contextmanager
def serve_center(settings: CenterSettings, clock: Clock | None = None
                 ) -> Iterator[RunningCenter]:
    """The real center (API, websocket, MQTT ingest) served by uvicorn in a thread until the
    block ends. Every person of the district has the password ``password_for(id)``."""
    from center.app import create_app, server_options

    app = create_app(settings, clock=clock, timer_interval=1.0 if clock is None else 0)
    port = settings.http.port
    # gridwatch center run's own options (proxy headers, websockets), on the test's port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           **server_options(settings.http)))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            pytest.fail("the center's server thread ended before it started")
        return server.started

    wait_until(started, 30, "the center to start")
    running = RunningCenter(f"http://127.0.0.1:{port}", settings, app)
    set_known_passwords(settings.db.dsn)  # the district was imported by the app's start-up
    _wait_mqtt_connected(running)
    try:
        yield running
    finally:
        running.close()
        server.should_exit = True
        thread.join(15)
        if settings.mqtt.username is None and not settings.mqtt.tls.enabled:
            # on the session's shared broker (one with accounts or TLS is its test's own)
            forget_session(settings.mqtt.port, settings.mqtt.client_id)


@pytest.fixture
def center(db_dsn: str, mqtt_broker: Mosquitto, center_clock: Clock | None,
           center_settings: dict[str, Any], tmp_path: Path) -> Iterator[RunningCenter]:
    """The real center for one test; ``center.client(id)`` is an HTTP client logged in as a
    person of the district, ``center.ws(id)`` their websocket. Alert clips it receives are
    kept under the test's ``tmp_path``."""
    settings = {"clips": {"dir": tmp_path / "center-clips"}} | center_settings
    with serve_center(center_settings_for(db_dsn, mqtt_broker.port, **settings),
                      center_clock) as running:
        yield running


@pytest.fixture(scope="module")
def read_only_center(pg_admin_dsn: str, pg_template: str, mqtt_broker: Mosquitto,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCenter]:
    """One center, on the system clock and default settings, for all of a module's tests that
    only read from it and change nothing (a request refused with a 422, a GET of the untouched
    district): a center of its own costs a test 1-3 s of this box (its database, its start,
    FastAPI's first request). A test that writes, publishes or needs its own clock or settings
    uses ``center``."""
    clips = {"clips": {"dir": tmp_path_factory.mktemp("center-clips")}}
    with cloned_database(pg_admin_dsn, pg_template) as dsn, \
            serve_center(center_settings_for(dsn, mqtt_broker.port, **clips)) as running:
        yield running


def _wait_mqtt_connected(center: RunningCenter, timeout: float = 15) -> None:
    def connected() -> bool:
        r = center._http().get("/healthz")
        return r.status_code == 200 and r.json()["mqtt"]

    wait_until(connected, timeout, "the center to connect to the broker")

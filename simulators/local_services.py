"""Private PostgreSQL and Mosquitto servers on free loopback ports, for the demo and the tests.

Both run Debian's own packages (the real servers users run), from a data folder we own, bound
to 127.0.0.1 only. As root, PostgreSQL must run as the ``postgres`` user (pg_ctl refuses root)
and Mosquitto drops to the ``mosquitto`` user, so the data folders are handed to those users.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self

import psycopg

from center.transport.mqtt_auth import limits_conf, listener_conf, write_private
from wire.mqtt_tls import TlsFiles

PG_BIN = Path(os.environ.get("GRIDWATCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
MOSQUITTO_BIN = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class ServiceError(RuntimeError):
    """A local server could not be started; the message says which and why."""


def free_port(preferred: int | None = None) -> int:
    """A free TCP port on 127.0.0.1, ``preferred`` when it is free."""
    if preferred is not None:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServiceError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s\n{tail}")


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM,
                 timeout: float = 10) -> None:
    """Ask ``proc`` to exit with ``sig`` and wait for it; SIGKILL after ``timeout`` seconds, so
    a hung server never outlives the run that started it."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _service_user(name: str) -> pwd.struct_passwd | None:
    """The unprivileged user a server must run as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServiceError(f"running as root needs the system user {name!r}") from None


def _hand_to(path: Path, user: pwd.struct_passwd | None) -> None:
    """Give a folder to the server's user and make its parents traversable by it."""
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, user.pw_uid, user.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


#: The cluster's whole pg_hba.conf: every connection, socket or loopback, proves the password.
PG_HBA = """# Written by gridwatch at every start (simulators/local_services.py; docs/security.md):
# every connection proves the password with SCRAM-SHA-256; nobody is trusted by address.
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
PG_SUPERUSER = "postgres"


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of an ASCII password (RFC 5802/7677, what libpq's
    ``PQencryptPasswordConn`` makes): the server stores this, never the password.

    Example:
        >>> scram_verifier("pw", salt=b"0123456789abcdef").startswith("SCRAM-SHA-256$4096:")
        True
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def pgpass_password(path: Path) -> str | None:
    """The password of a one-line pgpass file (``*:*:*:user:password``), None when absent."""
    if not path.is_file():
        return None
    line = path.read_text(encoding="utf-8").strip()
    return line.split(":", 4)[4] if line.count(":") >= 4 else None


class Postgres:
    """A PostgreSQL cluster in ``data_dir``; reused (data kept) when it already exists.

    Password authentication only: the superuser's password lives in ``password_file`` (default
    ``<data_dir>.pgpass`` beside the cluster), a libpq pgpass file of mode 0600 that ``dsn()``
    names as ``passfile``, so the password is never in a command line or an environment
    variable. At every start, before the server listens, the cluster's ``pg_hba.conf`` is
    rewritten (``PG_HBA``) and the password set in single-user mode; a cluster made by an older
    gridwatch with ``trust`` is moved over that way.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *,
                 password_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.password_file = (Path(password_file).resolve() if password_file is not None
                              else self.data_dir.with_name(f"{self.data_dir.name}.pgpass"))
        self._user = _service_user("postgres")
        if not (PG_BIN / "initdb").exists():
            raise ServiceError(
                f"PostgreSQL binaries not found in {PG_BIN}: apt-get install postgresql"
            )

    def dsn(self, dbname: str = "postgres") -> str:
        """A DSN whose password comes from ``password_file`` (libpq's ``passfile``)."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=PG_SUPERUSER, dbname=dbname,
            passfile=str(self.password_file))

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, input=stdin)

    def _password(self) -> str:
        """The superuser's password, made (and written 0600) on first use."""
        password = pgpass_password(self.password_file)
        if password:
            return password
        password = secrets.token_urlsafe(24)
        write_private(self.password_file, f"*:*:*:{PG_SUPERUSER}:{password}\n")
        return password

    def _require_password(self) -> None:
        """Rewrite pg_hba.conf and set the superuser's password while the server is down, in
        single-user mode (no network, no authentication): the verifier goes in on stdin."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(PG_HBA, encoding="utf-8")
        if self._user is not None:
            os.chown(hba, self._user.pw_uid, self._user.pw_gid)
        verifier = scram_verifier(self._password())
        r = self._run("postgres", "--single", "-D", str(self.data_dir), "-c",
                      "exit_on_error=true", "postgres",
                      stdin=f"ALTER ROLE {PG_SUPERUSER} PASSWORD '{verifier}'\n")
        if r.returncode:
            raise ServiceError(f"could not set the PostgreSQL password in {self.data_dir}: "
                               f"{r.stderr.replace(verifier, '…').strip()[-2000:]}")

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        _hand_to(self.data_dir, self._user)
        if not (self.data_dir / "PG_VERSION").exists():
            # trust only until _require_password replaces pg_hba.conf, before any listening
            r = self._run("initdb", "-D", str(self.data_dir), "-U", PG_SUPERUSER,
                          "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
            if r.returncode:
                raise ServiceError(f"initdb failed in {self.data_dir}: {r.stderr.strip()}")
        self._require_password()
        log = self.data_dir / "server.log"
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data_dir} "
                "-c fsync=on -c max_connections=200")
        r = self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(log),
                      "-o", opts, "start")
        if r.returncode:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServiceError(f"PostgreSQL did not start on port {self.port}: "
                               f"{r.stderr.strip()}\n{tail}")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BrokerTls(TlsFiles):
    """A TLS listener's files (PEM), named as a client's (``wire.mqtt_tls``): the broker's
    certificate and key, and the CA that signed it (and, with ``require_certificate``, the
    clients' certificates). A listener cannot do without any of the three."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False


class Mosquitto:
    """A Mosquitto broker with persistence in ``data_dir``, listening on 127.0.0.1 only.

    ``password_file`` + ``acl_file`` (``center.transport.mqtt_auth.gen_auth``) turn anonymous
    access off and bind each client id to its account
    (``center.transport.mqtt_auth.listener_conf``); every broker refuses messages larger than the
    protocol's (``center.transport.mqtt_auth.limits_conf``);
    ``tls`` adds a TLS listener on ``tls_port`` (the plain listener stays on ``port``; with
    ``plain=False`` there is none and ``port`` is the TLS one). The files are copied into
    ``data_dir`` so that the broker's own user can read them.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *,
                 password_file: Path | None = None, acl_file: Path | None = None,
                 tls: BrokerTls | None = None, tls_port: int | None = None,
                 plain: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.password_file, self.acl_file, self.tls, self.plain = (
            password_file, acl_file, tls, plain)
        if tls is not None and not plain:
            tls_port = self.port
        self.tls_port = (tls_port or free_port()) if tls is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = _service_user("mosquitto")
        if not Path(MOSQUITTO_BIN).exists():
            raise ServiceError("mosquitto not found: apt-get install mosquitto")
        if (password_file is None) != (acl_file is None):
            raise ServiceError("give Mosquitto both password_file and acl_file, or neither")

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def _copy_in(self, path: Path, name: str) -> Path:
        folder = self.data_dir / "auth"
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o700)
        target = folder / name
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
        return target

    def _listener(self, port: int) -> str:
        """A loopback listener; with accounts, one that binds client ids to them."""
        if self.password_file is None:
            return f"listener {port} 127.0.0.1\n"
        return listener_conf(port, "127.0.0.1")

    def _write_config(self) -> Path:
        conf = self.data_dir / "mosquitto.conf"
        security = "allow_anonymous true\n"
        if self.password_file is not None and self.acl_file is not None:
            security = ("allow_anonymous false\n"
                        f"password_file {self._copy_in(self.password_file, 'passwd')}\n"
                        f"acl_file {self._copy_in(self.acl_file, 'acl')}\n")
        listeners = self._listener(self.port) if self.plain else ""
        if self.tls is not None and self.tls_port is not None:
            listeners += (self._listener(self.tls_port) +
                          f"certfile {self._copy_in(self.tls.cert_file, 'server.crt')}\n"
                          f"keyfile {self._copy_in(self.tls.key_file, 'server.key')}\n"
                          f"cafile {self._copy_in(self.tls.ca_file, 'ca.crt')}\n"
                          f"require_certificate {str(self.tls.require_certificate).lower()}\n")
        conf.write_text(
            listeners + security + limits_conf() +
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            "autosave_interval 5\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 1000\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        return conf

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self._write_config()
        _hand_to(self.data_dir, self._user)
        self._proc = subprocess.Popen(
            [MOSQUITTO_BIN, "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_for_port(self.port if self.plain else self.tls_port or self.port, 15,
                          "Mosquitto", self.log_path)
            if self.tls_port is not None:
                wait_for_port(self.tls_port, 15, "Mosquitto (TLS)", self.log_path)
        except ServiceError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        stop_process(self._proc)
        self._proc = None

    def save(self, timeout: float = 5.0) -> None:
        """Make the broker write its persistence file now (SIGUSR1), so a crash drill starts
        from a known state: sessions and subscriptions made since the last autosave survive
        a kill. Without it, a killed broker comes back as it was up to 5 s earlier."""
        if self._proc is None:
            raise ServiceError("Mosquitto is not running")
        db = self.data_dir / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else 0
        self._proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if db.exists() and db.stat().st_mtime_ns != before:
                return
            time.sleep(0.02)
        raise ServiceError(f"Mosquitto did not write {db} within {timeout:.0f}s")

    def kill(self) -> None:
        """Stop abruptly, as a crash would (for fault drills)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

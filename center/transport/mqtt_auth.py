"""MQTT accounts for Mosquitto: one login per edge, one for the center, and the ACL that keeps
each edge inside its own topics (``gridwatch mqtt gen-auth``).

What it writes into the output folder (secrets 0600, never logged, never in the repository):

- ``passwd``: Mosquitto 2.0's password file (``user:$7$<iterations>$<salt>$<hash>``, PBKDF2 with
  SHA-512, the format ``mosquitto_passwd`` writes), for ``password_file``;
- ``acl``: the ACL, for ``acl_file`` (not secret: it names topics, not passwords);
- ``mosquitto-auth.conf``: a drop-in for ``/etc/mosquitto/conf.d/`` (``allow_anonymous false``,
  ``password_file``, ``acl_file``, the message size limits, and a listener that binds each
  client id to its account: ``use_username_as_clientid``, see ``listener_conf``);
- ``edges/<edge_id>.secret``: that edge's password (0600), to copy to the edge box, and
  ``edges/<edge_id>.broker.yaml``: the ``broker:`` snippet for its YAML, which names the secret
  file instead of holding the password;
- ``center.secret`` and ``center.env``: the center's password and its ``GRIDWATCH_MQTT__*``
  variables (``GRIDWATCH_MQTT__PASSWORD_FILE``); with ``center_replicas`` N > 1, one account
  per replica (``<center_user>``, ``<center_user>-2`` ... ``-N``: client ids are bound to
  accounts, so replicas cannot share one) with ``center-<i>.secret``/``center-<i>.env``
  beside the first, whose variables also name the replica's client id and the share group
  (docs/scaling.md "Replicas").

Running it again keeps existing passwords (``rotate=True``: new ones for everybody), adds new
edges and drops edges no longer listed, so it can be re-run whenever an edge is added.

Topic rights (``TOPIC_ROOT`` = ``gridwatch/v1``): an edge logs in with its ``edge_id`` as user
name, and ``pattern`` lines with ``%u`` give it write access to
``<kind>/<edge_id>`` and ``<kind>/<edge_id>/#`` for every edge-to-center kind in
``EDGE_TOPIC_KINDS``, and read access to its own ``config/<edge_id>`` and ``model/<edge_id>``
only (``EDGE_READ_KINDS``). The center may read everything under ``gridwatch/v1/`` and write
those kinds for every edge (``config/#``, ``model/#``). Anything else is refused by the
broker: edge A publishing under edge B's topics is dropped before any subscriber sees it.

Client ids are the accounts' user names (``use_username_as_clientid``): whatever id a client
sends, the broker replaces it with its user name, so no account can connect under another's id
and take over (or cut off) that session, the center's persistent one included. The price is one
connection per account, which every component keeps (the center publishes configs on its
ingest connection).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wire.protocol import MAX_PAYLOAD_BYTES, TOPIC_ROOT

CENTER_USER = "gridwatch-center"
#: Topic kinds an edge publishes under ``gridwatch/v1/<kind>/<edge_id>[/...]`` (docs/protocol.md).
EDGE_TOPIC_KINDS = ("alerts", "status", "heartbeat", "config-state", "frames", "live-data",
                    "live-state", "clips")
#: Topic kinds the edge reads (``<kind>/<edge_id>``), written by the center: its pushed config,
#: its model assignment (docs/model-rollout.md) and live view requests (docs/video.md).
EDGE_READ_KINDS = ("config", "model", "live")
#: Mosquitto's default PBKDF2 iteration count for ``$7$`` hashes (mosquitto_passwd uses 101).
PBKDF2_ITERATIONS = 101
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Largest MQTT packet a broker reads: the largest payload plus topic, packet id and MQTT v5
#: properties. A client sending a bigger one is disconnected before the broker buffers it.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024


def limits_conf() -> str:
    """Mosquitto's global size limits, for every broker the project configures. Without them
    one client (or one unauthenticated CONNECT) can make the broker buffer a 256 MB packet and
    pass a 14 MB payload on to the center. ``message_size_limit`` drops a payload larger than
    the protocol allows but completes its QoS flow, so a sender's outbox moves on instead of
    resending it forever; ``max_packet_size`` cuts off anything larger still."""
    return (f"message_size_limit {MAX_PAYLOAD_BYTES}\n"
            f"max_packet_size {MAX_PACKET_BYTES}\n")


def listener_conf(port: int, bind_address: str | None = None) -> str:
    """A ``listener`` block for a broker with accounts. ``use_username_as_clientid`` is a
    listener option in Mosquitto 2.0 (it applies to the ``listener`` line above it only), so
    every listener of such a broker carries it."""
    address = f" {bind_address}" if bind_address else ""
    return f"listener {port}{address}\nuse_username_as_clientid true\n"


class AuthError(ValueError):
    """Bad input to ``gen_auth`` (an edge id that cannot be a user name, a clash, …)."""


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    """A Mosquitto 2.0 password hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``.

    Example:
        >>> h = hash_password("pw", salt=b"0123456789ab")
        >>> h.startswith("$7$101$MDEyMzQ1Njc4OWFi$")
        True
    """
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def check_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (as Mosquitto checks it)."""
    try:
        _, seven, iterations, salt, digest = hashed.split("$")
        if seven != "7":
            return False
        got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), base64.b64decode(salt),
                                  int(iterations))
    except (ValueError, TypeError):
        return False
    return secrets.compare_digest(base64.b64encode(got).decode(), digest)


def center_users(center_user: str = CENTER_USER, replicas: int = 1) -> list[str]:
    """The center's accounts: one per replica, the first named ``center_user``."""
    return [center_user, *(f"{center_user}-{i}" for i in range(2, replicas + 1))]


#: In a ``TopicRule``'s topic: the logged-in user's own name (an edge's ``edge_id``); each
#: broker's ACL writes it its own way (Mosquitto ``%u``, EMQX ``${username}``).
OWN_USER = "{user}"


@dataclass(frozen=True)
class TopicRule:
    """One right of the protocol's ACL, the one place both brokers' files are written from
    (Mosquitto's here, EMQX's in ``emqx_auth``): ``user`` may ``read`` (subscribe and receive)
    or ``write`` (publish) ``topic``. ``user`` None: every account, each as itself, with
    ``OWN_USER`` in ``topic`` standing for its own name."""

    user: str | None
    access: Literal["read", "write"]
    topic: str


def topic_rules(center_user: str = CENTER_USER, replicas: int = 1) -> list[TopicRule]:
    """Every right, in ACL order: each center account reads the whole protocol and writes the
    kinds edges read; every edge writes its own topics and reads its own config, model and live
    requests. Anything not listed is refused."""
    rules = []
    for user in center_users(center_user, replicas):
        rules.append(TopicRule(user, "read", f"{TOPIC_ROOT}/#"))
        rules += [TopicRule(user, "write", f"{TOPIC_ROOT}/{kind}/#") for kind in EDGE_READ_KINDS]
    for kind in EDGE_TOPIC_KINDS:
        rules += [TopicRule(None, "write", f"{TOPIC_ROOT}/{kind}/{OWN_USER}"),
                  TopicRule(None, "write", f"{TOPIC_ROOT}/{kind}/{OWN_USER}/#")]
    rules += [TopicRule(None, "read", f"{TOPIC_ROOT}/{kind}/{OWN_USER}")
              for kind in EDGE_READ_KINDS]
    return rules


def acl_text(center_user: str = CENTER_USER, replicas: int = 1) -> str:
    """Mosquitto's ACL from ``topic_rules``: the center's rights (for each replica's account),
    then ``pattern`` lines that apply to every user (``%u`` being the user name, which for an
    edge is its ``edge_id``). ``topic read gridwatch/v1/#`` also lets a replica subscribe
    ``$share/<group>/gridwatch/v1/...``: Mosquitto checks a shared subscription's topic without
    its ``$share/<group>/``."""
    lines = [
        "# gridwatch MQTT ACL (generated by `gridwatch mqtt gen-auth`; see docs/security.md).",
        "# Anonymous clients get nothing: there are no topic lines before the first `user`.",
        "",
        "# The center (each replica's account): reads everything of the protocol, pushes edge",
        "# configs and models.",
    ]
    rules = topic_rules(center_user, replicas)
    for user in center_users(center_user, replicas):
        lines += [f"user {user}",
                  *(f"topic {r.access} {r.topic}" for r in rules if r.user == user), ""]
    lines += [
        "# Every edge logs in with its edge_id as user name and may publish only under its own",
        "# topics (<kind>/<edge_id> and <kind>/<edge_id>/...) and read only its own config and",
        "# model assignment.",
        *(f"pattern {r.access} {r.topic.replace(OWN_USER, '%u')}"
          for r in rules if r.user is None),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class AuthFiles:
    """Where ``gen_auth`` wrote everything; the passwords themselves stay in the files."""

    out_dir: Path
    center_user: str
    edges: tuple[str, ...]
    center_replicas: int = 1

    @property
    def password_file(self) -> Path:
        return self.out_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.out_dir / "acl"

    @property
    def center_secret(self) -> Path:
        return self.out_dir / "center.secret"

    def center_replica_secret(self, i: int) -> Path:
        """Replica ``i``'s password file (1: ``center.secret``), its ``.env`` beside it."""
        return self.center_secret if i == 1 else self.out_dir / f"center-{i}.secret"

    def edge_secret(self, edge_id: str) -> Path:
        return self.out_dir / "edges" / f"{edge_id}.secret"

    def edge_snippet(self, edge_id: str) -> Path:
        return self.out_dir / "edges" / f"{edge_id}.broker.yaml"

    def password(self, user: str) -> str:
        """Read a generated password (for the demo and tests; never print it)."""
        centers = center_users(self.center_user, self.center_replicas)
        path = (self.center_replica_secret(centers.index(user) + 1) if user in centers
                else self.edge_secret(user))
        return read_secret(path)


def read_secret(path: Path) -> str:
    """A password file's content without the trailing newline."""
    return Path(path).read_text(encoding="utf-8").strip()


def write_private(path: Path, text: str) -> None:
    """Create (or replace) a file readable by its owner only, without a moment at 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _existing_or_new(path: Path, rotate: bool) -> str:
    if not rotate and path.is_file():
        current = read_secret(path)
        if current:
            return current
    password = secrets.token_urlsafe(24)
    write_private(path, password + "\n")
    return password


def gen_auth(edges: Iterable[str], out_dir: Path, *, center_user: str = CENTER_USER,
             rotate: bool = False, broker_host: str = "127.0.0.1",
             broker_port: int = 1883, center_replicas: int = 1) -> AuthFiles:
    """Write the password file, the ACL and every account's credentials into ``out_dir``."""
    out_dir = Path(out_dir)
    wanted = sorted(dict.fromkeys(e.strip() for e in edges if e.strip()))
    if not wanted:
        raise AuthError("no edges given")
    if center_replicas < 1:
        raise AuthError("center_replicas must be at least 1")
    centers = center_users(center_user, center_replicas)
    for user in [*centers, *wanted]:
        if not _USER_RE.fullmatch(user):
            raise AuthError(f"{user!r} cannot be an MQTT user name (edge ids are "
                            "[A-Za-z0-9][A-Za-z0-9_.-]{0,63})")
    if clash := sorted(set(centers) & set(wanted)):
        raise AuthError(f"edge id {clash[0]!r} is the center's user name")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = AuthFiles(out_dir, center_user, tuple(wanted), center_replicas)
    hashes = []
    for i, user in enumerate(centers, 1):
        secret = files.center_replica_secret(i)
        hashes.append(f"{user}:{hash_password(_existing_or_new(secret, rotate))}")
        replica = (f"GRIDWATCH_MQTT__CLIENT_ID={user}\n"
                   f"GRIDWATCH_MQTT__SHARE_GROUP={center_user}\n" if center_replicas > 1
                   else "")
        write_private(secret.with_suffix(".env"),
                      f"GRIDWATCH_MQTT__HOST={broker_host}\n"
                      f"GRIDWATCH_MQTT__PORT={broker_port}\n"
                      f"GRIDWATCH_MQTT__USERNAME={user}\n"
                      f"GRIDWATCH_MQTT__PASSWORD_FILE={secret.resolve()}\n" + replica)
    for stale in out_dir.glob("center-*.secret"):  # replicas no longer wanted
        number = stale.stem.removeprefix("center-")
        if number.isdigit() and int(number) > center_replicas:
            stale.unlink()
            stale.with_suffix(".env").unlink(missing_ok=True)
    for edge_id in wanted:
        password = _existing_or_new(files.edge_secret(edge_id), rotate)
        hashes.append(f"{edge_id}:{hash_password(password)}")
        files.edge_snippet(edge_id).write_text(
            "# Merge into this edge's YAML; copy the .secret file to the edge box (mode 0600)\n"
            "# and point password_file at it.\n"
            "broker:\n"
            f"  host: {broker_host}\n"
            f"  port: {broker_port}\n"
            f"  username: {edge_id}\n"
            f"  password_file: {files.edge_secret(edge_id).resolve()}\n",
            encoding="utf-8")
    for stale in (out_dir / "edges").glob("*.secret"):
        if stale.stem not in wanted:
            stale.unlink()
            stale.with_name(f"{stale.stem}.broker.yaml").unlink(missing_ok=True)
    write_private(files.password_file, "\n".join(hashes) + "\n")
    files.acl_file.write_text(acl_text(center_user, center_replicas), encoding="utf-8")
    (out_dir / "mosquitto-auth.conf").write_text(
        "# A drop-in for /etc/mosquitto/conf.d/ (Mosquitto 2.0); see docs/security.md for TLS.\n"
        "# The listener below is the broker's port (add certfile/keyfile under it for TLS); any\n"
        "# other listener needs `use_username_as_clientid true` right below its line too.\n"
        "allow_anonymous false\n"
        f"password_file {files.password_file.resolve()}\n"
        f"acl_file {files.acl_file.resolve()}\n"
        + limits_conf() + listener_conf(broker_port), encoding="utf-8")
    return files

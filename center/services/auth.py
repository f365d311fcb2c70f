"""Who is asking, and what they may see: passwords, bearer tokens and the access rules.

Passwords are argon2 hashes (``pwdlib``) in ``district_people.password_hash``. A login returns
an HS256 JSON Web Token (``PyJWT``) naming the person; clients send it as
``Authorization: Bearer …`` (the websocket in its first message, center/transport/push.py, as
browsers' WebSocket cannot send a header; pictures and downloads use signed URLs, below: never
the token in a URL). Bearer tokens are never sent by the browser on its own, unlike cookies, so
the API needs no CSRF defence. The token names only the person: their role and area are read
from the district at each request, so a role change or a deactivation takes effect at once.

The access rules (docs/security.md has them as a table) live here, next to each other, so that
the REST routes and the websocket hub apply the same ones.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError
from pwdlib.hashers.argon2 import Argon2Hasher

from center.domain.district import District, Person
from center.platform.settings import check_secret
from center.store import db, people, server_secrets
from center.store.tickets import EVERYTHING, Scope

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
SECRET_NAME = "jwt_signing_key"
_HASHER = PasswordHash((Argon2Hasher(),))
#: Verified against when the person is unknown, so a wrong id costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

OPERATORS = frozenset({"operator", "admin"})
LEADERS = frozenset({"micro_grid_leader", "grid_leader"})
#: District-wide readers: the wall feed, every ticket (engineers only read them).
WALL_ROLES = frozenset({"operator", "admin", "engineer"})


# --- passwords ------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return _HASHER.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Constant work whether or not the person has a password."""
    if hashed is None:
        _HASHER.verify(password, _DUMMY_HASH)
        return False
    try:
        return _HASHER.verify(password, hashed)
    except (PwdlibError, ValueError):
        # A malformed hash in the table: a failed login, not a 500 (an unknown format raises
        # UnknownHashError, a non-ASCII one UnicodeEncodeError).
        log.warning("unreadable password hash")
        return False


def new_password() -> str:
    """A random password for ``gen-passwords`` and the demo (about 96 bits)."""
    return secrets.token_urlsafe(12)


class HashingBusy(Exception):
    """Every hashing slot is taken and the queue is full: answer 503, the client retries."""


class Hashing:
    """Argon2 for the running center: off the event loop, and bounded.

    A hash costs tens of milliseconds of CPU on purpose; run on the event loop, four parallel
    wrong-password loops held every request, websocket and the MQTT ingest for seconds. Here
    each hash runs in a worker thread (argon2-cffi releases the GIL), at most ``concurrency``
    at once, so a flood of logins takes at most those cores; up to ``queue`` more wait their
    turn (first come, first served) and beyond that ``HashingBusy`` (503 with Retry-After:
    the server is busy, the caller did nothing wrong)."""

    def __init__(self, concurrency: int | None = None, queue: int = 32) -> None:
        self.concurrency = concurrency or max(1, (os.cpu_count() or 2) // 2)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._queue = queue
        self._waiting = 0

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._slots.locked() and self._waiting >= self._queue:
            raise HashingBusy(f"{self.concurrency + self._waiting} password checks in"
                              " progress; retry in a second")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._slots.release()

    async def verify(self, password: str, hashed: str | None) -> bool:
        return bool(await self._run(verify_password, password, hashed))

    async def hash(self, password: str) -> str:
        return str(await self._run(hash_password, password))


# --- the signing secret ---------------------------------------------------------------------

async def signing_secret(conn: db.Connection, configured: str | None) -> str:
    """The configured secret, else the database's own (generated on first use: two databases
    never share one, and nothing in the code or the repository is a secret)."""
    if configured is not None:
        return check_secret(configured)
    return check_secret(await server_secrets.get_or_create(conn, SECRET_NAME,
                                                           secrets.token_urlsafe(48)))


# --- tokens ---------------------------------------------------------------------------------

class InvalidToken(Exception):
    """No usable token: missing, malformed, forged or expired (the message says which)."""


class RevokedToken(InvalidToken):
    """A genuine token of an older generation: password changed or logged out everywhere."""


def issue_token(secret: str, person_id: str, ttl_s: float, *, now: float | None = None,
                generation: int = 0) -> tuple[str, int]:
    """A signed token for a person and its expiry (Unix seconds). Real time, not the
    center's clock: tests move that clock by days. ``generation``: the person's current token
    generation (center/store/people.py ``login_record``)."""
    issued = int(now if now is not None else time.time())
    exp = issued + int(ttl_s)
    token = jwt.encode({"sub": person_id, "iat": issued, "exp": exp, "gen": generation,
                        "jti": secrets.token_urlsafe(8)}, secret, algorithm=ALGORITHM)
    return token, exp


def read_claims(secret: str, token: str | None) -> tuple[str, int]:
    """The person a token names and its generation (0 for tokens from before generations
    existed); InvalidToken otherwise. Whether that generation is still current is
    ``TokenGenerations.check``'s business."""
    if not token:
        raise InvalidToken("no bearer token")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["sub", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired; log in again") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("invalid token") from None
    sub = claims.get("sub")
    gen = claims.get("gen", 0)
    if (not isinstance(sub, str) or not sub or not isinstance(gen, int)
            or isinstance(gen, bool) or gen < 0):
        raise InvalidToken("invalid token")
    return sub, gen


# --- signed URLs ----------------------------------------------------------------------------
# An <img src>, a link to a photo or a CSV download cannot send ``Authorization``. Instead of
# the bearer token in the URL (which browsers keep in their history and proxies in their logs),
# such a URL carries ``sig=EXP.GEN.MAC.PERSON``: an HMAC of the exact path and query, the
# person, their token generation and an expiry minutes away, like S3 presigned or CloudFront
# signed URLs. It opens that one resource, as that person, until it expires or the person's
# tokens are revoked (the generation is checked like a token's), and nothing else.

#: How long a signed URL works. Short, so one copied from a screen or a log is soon worthless.
SIGNED_URL_TTL_S = 300
#: Expiries are rounded up to this: one person signing the same URL within it gets the same
#: URL, so the browser's cache of pictures keeps working.
SIGNED_URL_STEP_S = 60
SIGNED_URL_PREFIX = "/api/v1/"
SIG_PARAM = "sig"
_SIG_FORM = re.compile(r"(\d{1,12})\.(\d{1,9})\.([A-Za-z0-9_-]{43})\.(.{1,64})", re.ASCII)


def _url_key(secret: str) -> bytes:
    """A key of its own for URLs, so a URL signature can never pass for a token's."""
    return hmac.new(secret.encode(), b"gridwatch signed url v1", hashlib.sha256).digest()


def _canonical(path: str, query: Iterable[tuple[str, str]]) -> str:
    """The decoded path and the sorted query without ``sig``: what the server sees of a URL
    however the browser spelled it."""
    pairs = sorted((k, v) for k, v in query if k != SIG_PARAM)
    return f"{path}?{urlencode(pairs)}"


def _url_mac(secret: str, person_id: str, generation: int, exp: int, canonical: str) -> str:
    msg = f"{person_id}\n{generation}\n{exp}\n{canonical}".encode()
    digest = hmac.new(_url_key(secret), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_url(secret: str, url: str, person_id: str, generation: int, *,
             now: float | None = None) -> tuple[str, int]:
    """``url`` (a path under /api/v1/, with its query) signed for a person, and its expiry;
    ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith(SIGNED_URL_PREFIX):
        raise ValueError(f"only paths under {SIGNED_URL_PREFIX} can be signed: {url[:80]!r}")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != SIG_PARAM]
    issued = int(now if now is not None else time.time())
    exp = -(-(issued + SIGNED_URL_TTL_S) // SIGNED_URL_STEP_S) * SIGNED_URL_STEP_S
    mac = _url_mac(secret, person_id, generation, exp, _canonical(unquote(parts.path), query))
    sig = quote(f"{exp}.{generation}.{mac}.{person_id}", safe="")
    query_text = urlencode(query)
    return f"{parts.path}?{query_text + '&' if query_text else ''}{SIG_PARAM}={sig}", exp


def read_signed_url(secret: str, path: str, query: Iterable[tuple[str, str]], *,
                    now: float | None = None) -> tuple[str, int]:
    """The person and token generation a signed URL was made for; InvalidToken when it is
    malformed, forged, for another URL or expired."""
    pairs = list(query)
    sigs = [v for k, v in pairs if k == SIG_PARAM]
    if len(sigs) != 1:
        raise InvalidToken("no signed URL")
    found = _SIG_FORM.fullmatch(sigs[0])
    if found is None:
        raise InvalidToken("invalid signed URL")
    exp, generation, mac, person_id = (int(found[1]), int(found[2]), found[3], found[4])
    good = _url_mac(secret, person_id, generation, exp, _canonical(path, pairs))
    if not hmac.compare_digest(good, mac):
        raise InvalidToken("invalid signed URL (signed for another URL, or forged)")
    if exp <= (now if now is not None else time.time()):
        raise InvalidToken("signed URL expired; reload the page")
    return person_id, generation


LISTEN_RETRY_S = 2.0
#: The listener's ``application_name`` (``pg_stat_activity``).
LISTENER_NAME = "gridwatch-token-listener"
#: How long the listener waits for a notification before checking that its connection lives.
LISTEN_PING_S = 30.0


class TokenGenerations:
    """Each person's current token generation, in memory: ``check`` is a dict lookup, so the
    auth check of every request and websocket costs no query.

    Kept current by ``apply`` (this process's own revocations, at once) and by ``listen``
    (PostgreSQL ``NOTIFY`` from the trigger of migration 0008, for revocations made by the CLI,
    another center process or plain SQL: milliseconds after they commit). Generations only go
    up, so a late or repeated notification never undoes a revocation. ``on_revoke(person_id,
    generation)`` is called when a person's generation goes up (the hub closes their sockets).
    """

    def __init__(self, on_revoke: Callable[[str, int], object] | None = None) -> None:
        self._current: dict[str, int] = {}
        self.on_revoke = on_revoke

    def current(self, person_id: str) -> int:
        return self._current.get(person_id, 0)

    def check(self, person_id: str, generation: int) -> None:
        """InvalidToken (RevokedToken) when a token of ``generation`` has been revoked. A
        newer generation than known is accepted: this process has not heard of a change yet
        (the database only counts up, so such a token was issued after it)."""
        if generation < self._current.get(person_id, 0):
            raise RevokedToken("token revoked (password changed or logged out everywhere);"
                               " log in again")

    def apply(self, person_id: str, generation: int) -> None:
        if generation <= self._current.get(person_id, 0):
            return
        self._current[person_id] = generation
        if self.on_revoke is not None:
            try:
                self.on_revoke(person_id, generation)
            except Exception:  # closing sockets must not undo the revocation itself
                log.exception("closing revoked sockets failed person=%s", person_id)

    async def load(self, conn: db.Connection) -> None:
        """Read every person's generation (at start-up, and whenever the listener
        (re)connects, so nothing said while it was away is missed)."""
        for person_id, generation in await people.token_generations(conn):
            self.apply(person_id, generation)

    def _notified(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            person_id, generation = msg["person_id"], msg["generation"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable %s notification", people.NOTIFY_CHANNEL)
            return
        if isinstance(person_id, str) and isinstance(generation, int):
            self.apply(person_id, generation)

    async def listen(self, dsn: str) -> None:
        """Run until cancelled: LISTEN, load everything, apply each notification. A lost
        connection is retried every ``LISTEN_RETRY_S``, then everything is loaded again;
        until then revocations made by other processes wait (this process's own apply at
        once)."""
        while True:
            try:
                async with await db.connect(dsn, autocommit=True,
                                            application_name=LISTENER_NAME) as conn:
                    await people.listen_token_changes(conn)
                    await self.load(conn)  # after LISTEN: a change in between is not missed
                    while True:
                        async for payload in people.token_changes(conn, LISTEN_PING_S):
                            self._notified(payload)
                        # quiet for a while: is the connection still alive?
                        await asyncio.wait_for(db.ping(conn), LISTEN_PING_S)
            except asyncio.CancelledError:
                raise
            except (db.DatabaseError, OSError, TimeoutError) as exc:
                log.warning("token revocation listener: %s; retrying in %.0f s", exc,
                            LISTEN_RETRY_S)
            await asyncio.sleep(LISTEN_RETRY_S)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None when absent or not Bearer)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


# --- who is asking --------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """A logged-in person of the district."""

    person: Person
    #: The token generation of the token they came with (center/transport/push.py closes the
    #: sockets of revoked ones).
    generation: int = 0

    @property
    def id(self) -> str:
        return self.person.id

    @property
    def role(self) -> str:
        return self.person.role

    @property
    def is_operator(self) -> bool:
        return self.person.role in OPERATORS

    @property
    def is_wall(self) -> bool:
        """Sees everything (read-only for engineers)."""
        return self.person.role in WALL_ROLES

    def micro_grids(self, d: District) -> set[str] | None:
        """The micro-grids a leader answers for (None: not a leader)."""
        p = self.person
        if p.role == "micro_grid_leader":
            return {p.micro_grid} if p.micro_grid else set()
        if p.role == "grid_leader":
            return {a.id for a in d.areas.values() if a.parent == p.grid and p.grid}
        return None

    def event_types(self, d: District) -> set[str] | None:
        """The event types a department's staff handle (None: not department staff)."""
        if self.person.role != "department_staff":
            return None
        dept = d.departments.get(self.person.department or "")
        return set(dept.event_types) if dept and dept.active else set()

    def scope(self, d: District) -> Scope:
        """The tickets this person sees, as every ticket list and read applies it: the wall
        roles every ticket; everyone else those assigned to them, and a leader their area's,
        department staff their event types' and those handed off to their department."""
        if self.is_wall:
            return EVERYTHING
        areas, types = self.micro_grids(d), self.event_types(d)
        dept = self.person.department if self.person.role == "department_staff" else None
        return Scope(person_id=self.id,
                     micro_grids=None if areas is None else frozenset(areas),
                     event_types=None if types is None else frozenset(types),
                     departments=None if dept is None else frozenset({dept}))

    def sees_ticket(self, d: District, micro_grid_id: str | None, event_type: str,
                    assignee_id: str | None, department_id: str | None = None) -> bool:
        return self.scope(d).admits(micro_grid_id, event_type, assignee_id, department_id)

    def sees_ticket_view(self, d: District, data: dict[str, Any]) -> bool:
        return self.sees_ticket(d, data.get("micro_grid_id"), str(data.get("event_type", "")),
                                data.get("assignee_id"), data.get("department_id"))

    def why_not_ticket(self, d: District, ticket_id: int) -> str:
        """The 403 message when a ticket is outside what this person sees."""
        p = self.person
        if p.role == "worker":
            return f"ticket {ticket_id} is not assigned to worker {p.id}"
        if p.role == "micro_grid_leader":
            return f"ticket {ticket_id} is not in micro-grid {p.micro_grid} ({p.id} leads it)"
        if p.role == "grid_leader":
            return f"ticket {ticket_id} is not in grid {p.grid} ({p.id} leads it)"
        if p.role == "department_staff":
            return (f"ticket {ticket_id} is not an event type of department {p.department}"
                    f" ({p.id} works there)")
        return f"role {p.role} cannot see ticket {ticket_id}"

    def leads_area(self, d: District, area_id: str) -> bool:
        """A grid leader leads their grid and its micro-grids; a micro-grid leader theirs."""
        p = self.person
        if p.role == "grid_leader":
            return area_id == p.grid or d.grid_of(area_id) == p.grid
        if p.role == "micro_grid_leader":
            return area_id == p.micro_grid
        return False


def require(principal: Principal, roles: Iterable[str], what: str) -> None:
    """403 naming the roles that may do ``what`` unless the principal has one of them."""
    from fastapi import HTTPException

    allowed = tuple(roles)
    if principal.role not in allowed:
        raise HTTPException(403, f"{what} needs role {' or '.join(allowed)};"
                                 f" {principal.id} is {principal.role}")


# --- logs -----------------------------------------------------------------------------------

_TOKEN_IN_TEXT = re.compile(r"((?:token|access_token|sig)=)[^&\s\"']+", re.IGNORECASE)
_BEARER_IN_TEXT = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _BEARER_IN_TEXT.sub(r"\1[redacted]", _TOKEN_IN_TEXT.sub(r"\1[redacted]", text))


class RedactTokens(logging.Filter):
    """Scrubs ``token=…``, signed URLs' ``sig=…`` and bearer headers from log records: the
    access log prints every URL with its query (tokens no longer travel in URLs, but an old
    client may still put one there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a logging filter must never raise; a broken
            # record (bad args, a failing __str__) is the logger's problem, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactTokens()


def install_log_redaction() -> None:
    """Once per process: on the server's loggers (their records are not ours to change at the
    source) and on the root handlers, so a record from anywhere is scrubbed."""
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", ""):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)

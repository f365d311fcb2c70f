"""Websocket fan-out to wall screens and phones.

A broadcast never waits for a slow screen. Each client has an outbox; once it holds
``queue_size // 2`` messages (the high-water mark; frames of up to ``MAX_BATCH`` events for a
client that takes batches) the client is *coalescing*: state events
(``ticket``, ``camera_status``, ``alert``, ``position``, ``duty``) no longer queue one by one but
keep only the newest per ticket / camera / person (by its ``updated_at`` or ``at`` where it has
one, else the last offered), the rest counted, and when the outbox has
drained the client gets those latest states and then one ``summary`` event with the counts (the
wall reloads its lists and counters once on it). So a wall stays connected and current through
an alert storm instead of being dropped (issue 16; docs/protocol.md "summary"). Messages that
are never merged or dropped: anything with notification ids (a phone's notifications, whose
receipts say "delivered"), ``emergency``, ``broadcast``, ``verdict``, ``clip``. A client is
dropped (1013, it reconnects and reloads) only when those alone fill its outbox
(``queue_size``), or when it has not taken a single message for ``stall_after_s`` while
messages wait: it is not reading at all.

Messages to a phone may carry notification ids (``center/notify``). The hub reports them to its
``receipts`` sink when it has actually written them to that phone's socket, passes on the read
receipts the phone sends back (``{"type": "read", "notification_id": N}`` or ``"ticket_id"``),
and, when a phone connects, asks the sink for what it missed. The sink only queues; the hub
never waits on the database while fanning out.

Every client is a logged-in person and gets only what that person may see (center/services/auth.py):
operators, admins and engineers get the wall feed (everything); leaders and department staff
get the tickets of their area or event types and what they are notified of; workers get only
what is sent to them (their own tickets, broadcasts).

The bearer token comes as the socket's first message, ``{"type": "auth", "token": …}``
(``authenticate``; docs/protocol.md), never in the URL: proxies, access logs and browser
histories keep URLs, and a browser's WebSocket cannot send an ``Authorization`` header.

A client that says ``"batch": true`` in that message may get several events in one frame, a
JSON array of events in order: whatever waits in its outbox when the socket can take more
goes out together (``MAX_BATCH``), so a quiet center still sends each event alone and a busy
one pays the frame, the send and the client's parse once per batch instead of once per event
(at 1,000 alerts/s a wall gets two events per alert). The pages all say it (live-socket.js).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic_core import to_json

from center.domain.district import District
from center.services.auth import InvalidToken, Principal
from center.services.notify.service import ReceiptSink
from center.services.presence import PRESENCE_EVENTS, sees_all_positions
from wire.protocol import SCHEMA_VERSION, WsEvent, WsEventType

log = logging.getLogger(__name__)

#: Longest message a screen may send (read receipts are tiny).
MAX_INCOMING = 1024
CATCH_UP_TIMEOUT_S = 5.0


#: Most events in one frame for a client that takes batches.
MAX_BATCH = 200
#: How long a new socket may take to send its auth message before it is closed (4401).
AUTH_DEADLINE_S = 5.0
#: Longest auth message (a token is a few hundred bytes).
MAX_AUTH = 4096
#: Close code for no valid token (as HTTP 401), and for a token that is not ``worker_id``'s.
UNAUTHORIZED = 4401
FORBIDDEN = 4403


def auth_message(token: str, *, batch: bool = False) -> str:
    """The first message a client sends on ``/ws``: its bearer token, and whether it takes
    events in batches (JSON arrays)."""
    return json.dumps({"type": "auth", "token": token} | ({"batch": True} if batch else {}))


@dataclass(frozen=True)
class Handshake:
    """Who opened a socket, and whether it takes batches."""

    principal: Principal
    batch: bool = False


async def authenticate(ws: WebSocket, principal_of: Callable[[str | None], Principal], *,
                       worker_id: str | None = None,
                       deadline_s: float = AUTH_DEADLINE_S) -> Handshake | None:
    """Accept a socket and read its first message, the token (``auth_message``), within
    ``deadline_s``: the person it names, or None once the socket is closed (4401: no valid
    token in time, or a token in the URL; 4403: ``worker_id``, kept for old clients, names
    someone else). Accepted first, so a browser can read the close code and reason.

    Home Assistant's websocket API does the same (an ``auth`` message first); Kubernetes puts
    the token in a ``Sec-WebSocket-Protocol`` value instead, but that is still a header of the
    upgrade request, which proxies may log, and it must be echoed back by the server."""
    await ws.accept()
    if "token" in ws.query_params:
        await _refuse(ws, UNAUTHORIZED, "a token in the URL is not accepted; send it as the"
                                        " first message")
        return None
    try:
        message = await asyncio.wait_for(ws.receive(), deadline_s)
    except TimeoutError:
        await _refuse(ws, UNAUTHORIZED, f"no auth message within {deadline_s:g} s")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    auth = _auth(message.get("text"))
    if auth is None:
        await _refuse(ws, UNAUTHORIZED, 'the first message must be {"type": "auth", "token": …}')
        return None
    token, batch = auth
    try:
        principal = principal_of(token)
    except InvalidToken as exc:
        await _refuse(ws, UNAUTHORIZED, str(exc))
        return None
    if worker_id is not None and worker_id != principal.id:
        await _refuse(ws, FORBIDDEN, "worker_id is not the token's person")
        return None
    return Handshake(principal, batch)


def _auth(text: str | None) -> tuple[str, bool] | None:
    """(token, takes batches) from the auth message, or None if it is not one."""
    if not text or len(text) > MAX_AUTH:
        return None
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "auth":
        return None
    token = msg.get("token")
    return (token, msg.get("batch") is True) if isinstance(token, str) and token else None


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.close(code=code, reason=reason.encode()[:120].decode(errors="ignore"))


#: Close code and reason for a client dropped for not reading (or a full outbox of messages
#: that may not be merged).
TOO_SLOW = (1013, "too slow; reconnect")
#: A client that has taken nothing for this long while messages wait is dropped
#: (``Hub(stall_after_s=…)``, setting ``ws_stall_after_s``).
STALL_AFTER_S = 20.0


def _coalesce_key(type_: str, data: dict[str, Any]) -> str | None:
    """The key under which a state event keeps only its latest copy while a client is
    coalescing, or None for events that are never merged. Alerts fold per camera (the
    wall's feed and map show the camera's latest; the count says how many were folded)."""
    if type_ in {"ticket", "camera_status"}:
        key = data.get("id")
    elif type_ == "alert":
        key = data.get("camera_id")
    elif type_ in {"position", "duty"}:
        key = data.get("person_id")
    else:
        return None
    return None if key is None else f"{type_}:{key}"


#: Which field dates a state event's copy (ISO 8601), per type; a later copy may be older: a
#: replica's relay reads a ticket, and its own batch commits a newer change before the read
#: returns (center/transport/replica_push.py).
_VERSION_FIELD = {"ticket": "updated_at", "camera_status": "updated_at", "position": "at"}


def _older(version: str | None, than: str | None) -> bool:
    """Whether a copy dated ``version`` is older than one dated ``than`` (undated: not)."""
    if not version or not than:
        return False
    try:
        return datetime.fromisoformat(version) < datetime.fromisoformat(than)
    except ValueError:
        return False


def summary_text(folded: dict[str, int], since: datetime) -> str:
    """The ``summary`` event a coalescing client gets after the latest states: how many events
    of each type were folded away since ``since`` (the wall reloads its lists once)."""
    return _text("summary", {"folded": dict(folded), "since": since.isoformat()})
#: Close code and reason for a client whose token was revoked (as for no valid token).
REVOKED = (UNAUTHORIZED, "token revoked; log in again")


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    worker_id: str | None  # None: sees everything (wall screen)
    #: Messages in order (text, notification ids); ``("", ())`` tells the sender to close.
    outbox: deque[tuple[str, tuple[int, ...]]] = field(default_factory=deque)
    #: While coalescing: the newest (text, version) per key (``_coalesce_key``), and counts of
    #: the events folded away by type, since ``coalescing_since``.
    latest: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    folded: dict[str, int] = field(default_factory=dict)
    coalescing_since: datetime | None = None
    #: Set when there is something for the sender task.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    queued_ids: set[int] = field(default_factory=set)  # notification ids already queued
    #: Leaders and department staff: which ticket events of others they see (their area).
    sees: Callable[[dict[str, Any]], bool] | None = None
    #: Whether workers' positions reach it (a wall screen whose person may see them all).
    positions: bool = True
    #: Whose token opened it, and its generation (``revoke`` closes it when that is revoked).
    person_id: str = ""
    generation: int = 0
    #: Why its sender task closes it when it finds the "" sentinel.
    close_with: tuple[int, str] = TOO_SLOW
    #: Takes several events in one frame (a JSON array; ``Handshake.batch``).
    batch: bool = False


def _ticket_filter(principal: Principal,
                   district: Callable[[], District]) -> Callable[[dict[str, Any]], bool] | None:
    if principal.person.role in ("micro_grid_leader", "grid_leader", "department_staff"):
        return lambda data: principal.sees_ticket_view(district(), data)
    return None


class Hub:
    def __init__(self, queue_size: int = 256, stall_after_s: float = STALL_AFTER_S) -> None:
        self._clients: set[_Client] = set()
        #: The same clients by who gets what, so an event visits only its own sockets, not
        #: every one (a check per socket per event, two events per alert, was one of the
        #: largest costs per alert with 173 phones: docs/performance.md, "CPU per alert by
        #: stage"): wall screens, phones by person, and the phones whose person sees an
        #: area's tickets (``_Client.sees``).
        self._walls: set[_Client] = set()
        self._phones: dict[str, set[_Client]] = {}
        self._seers: set[_Client] = set()
        self._queue_size = queue_size
        self._high_water = max(1, queue_size // 2)
        self._stall_after_s = stall_after_s
        #: Clients that went coalescing, and state events folded away (metrics, tests).
        self.coalesced_clients = 0
        self.folded_events = 0
        self.dropped_clients = 0
        self.receipts: ReceiptSink | None = None
        #: A person's current token generation
        #: (center/services/auth.py ``TokenGenerations.current``,
        #: set by the app): a socket accepted with an older one is closed at once.
        self.generation_of: Callable[[str], int] = lambda _person_id: 0

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, type_: WsEventType, data: dict[str, Any], *,
                recipients: Collection[str] = (), walls: bool = True) -> None:
        """Send to every wall screen (unless ``walls`` is false), and to the phones of the
        people in ``recipients``."""
        targets: list[_Client] = []
        if walls:
            presence = type_ in PRESENCE_EVENTS
            targets += (c for c in self._walls if not presence or c.positions)
        if recipients:
            people = set(recipients)
            targets += (c for p in people for c in self._phones.get(p, ()))
        else:
            people = set()
        if walls and type_ in ("ticket", "verdict", "clip"):
            targets += (c for c in self._seers
                        if c.worker_id not in people and c.sees is not None and c.sees(data))
        if not targets:
            return  # nobody to tell: not even serialised
        text, key = _text(type_, data), _coalesce_key(type_, data)
        version = data.get(_VERSION_FIELD[type_]) if type_ in _VERSION_FIELD else None
        for client in targets:
            self._offer(client, text, (), key, version)

    def register(self, client: _Client) -> None:
        """A client the hub sends to from now on (``serve``)."""
        self._clients.add(client)
        if client.worker_id is None:
            self._walls.add(client)
            return
        self._phones.setdefault(client.worker_id, set()).add(client)
        if client.sees is not None:
            self._seers.add(client)

    def _unregister(self, client: _Client) -> None:
        self._clients.discard(client)
        self._walls.discard(client)
        self._seers.discard(client)
        if client.worker_id is not None and (mine := self._phones.get(client.worker_id)):
            mine.discard(client)
            if not mine:
                del self._phones[client.worker_id]

    def send_to(self, person_id: str, type_: WsEventType, data: dict[str, Any],
                notification_ids: Sequence[int]) -> int:
        """Queue a message for one person's phones only; returns how many phones got it. The
        ids are reported to ``receipts.delivered`` once the message is written to a socket."""
        text = _text(type_, data)
        sent = 0
        for client in list(self._phones.get(person_id, ())):
            sent += self._offer(client, text, tuple(notification_ids))
        return sent

    def _offer(self, client: _Client, text: str, ids: tuple[int, ...],
               key: str | None = None, version: str | None = None) -> bool:
        """Queue ``text`` for a client, or fold it into the client's latest states (``key``, no
        ids, outbox at the high-water mark). False if it was already queued or the client was
        dropped."""
        if client.closing:
            return False
        if ids and client.queued_ids.issuperset(ids):
            return False  # already on its way (a catch-up met the live message)
        if key is not None and not ids and (client.latest
                                            or _frames(client) >= self._high_water):
            self._fold(client, key, text, version)
        else:
            if key is not None and key in client.latest:
                # Keep this key's order: its held copy goes out first.
                client.outbox.append((client.latest.pop(key)[0], ()))
            if _frames(client) >= self._queue_size:
                log.warning("dropping slow websocket client worker=%s", client.worker_id)
                self.dropped_clients += 1
                self._close(client, TOO_SLOW)
                return False
            client.outbox.append((text, ids))
            client.queued_ids.update(ids)
        client.wake.set()
        return True

    def _fold(self, client: _Client, key: str, text: str, version: str | None) -> None:
        """Hold ``text`` as the key's state to send, unless the copy held is newer: the client
        then gets the newest state, never the last one offered."""
        if not client.latest and not client.folded:
            client.coalescing_since = datetime.now(UTC)
            self.coalesced_clients += 1
        held = client.latest.get(key)
        if held is not None:
            type_ = key.split(":", 1)[0]
            client.folded[type_] = client.folded.get(type_, 0) + 1
            self.folded_events += 1
            if _older(version, held[1]):
                return
        client.latest[key] = (text, version)

    def _close(self, client: _Client, why: tuple[int, str]) -> None:
        """Unregister a client and have its sender task close it (after nothing more)."""
        self._unregister(client)
        client.close_with = why
        client.closing = True
        client.outbox.clear()
        client.latest.clear()
        client.outbox.append(("", ()))
        client.wake.set()

    def revoke(self, person_id: str, generation: int) -> int:
        """Close (4401) the sockets a person opened with tokens older than ``generation``:
        their password changed or they logged out everywhere (center/services/auth.py). Returns how
        many."""
        closed = 0
        for client in list(self._clients):
            if client.person_id == person_id and client.generation < generation:
                self._close(client, REVOKED)
                closed += 1
        if closed:
            log.info("closed %d websocket(s) of revoked tokens person=%s", closed, person_id)
        return closed

    async def serve(self, ws: WebSocket, principal: Principal,
                    district: Callable[[], District], *, batch: bool = False) -> None:
        """Run one client until it disconnects or is dropped.

        One sender task per client drains its queue; this coroutine reads what the screen sends,
        which is also how it learns the screen went away. (A task and an ``asyncio.wait`` per
        message instead cost twice the CPU at 1,000 screens: docs/performance.md.) The socket
        is accepted and its person known (``authenticate``)."""
        worker_id = None if principal.is_wall else principal.id
        client = _Client(ws, worker_id,
                         sees=_ticket_filter(principal, district), person_id=principal.id,
                         positions=sees_all_positions(principal),
                         generation=principal.generation, batch=batch)
        self.register(client)
        if principal.generation < self.generation_of(principal.id):
            self._close(client, REVOKED)  # revoked while it was being accepted
        hello = WsEvent(type="hello", at=datetime.now(UTC),
                        data={"worker_id": worker_id, "person_id": principal.id,
                              "role": principal.role})
        await ws.send_text(hello.model_dump_json())
        sender = asyncio.create_task(self._send_loop(client))
        try:
            await self._catch_up(client)
            await self._drain_incoming(client)
        finally:
            sender.cancel()
            self._unregister(client)

    async def _send_loop(self, client: _Client) -> None:
        """Send the outbox in order; once it is empty, the latest states held while coalescing
        and then the ``summary`` of what was folded. A client that takes no message for
        ``stall_after_s`` is dropped: it reads nothing at all."""
        try:
            while True:
                if client.outbox:
                    text, ids = self._next_frame(client)
                elif client.latest or client.folded:
                    await self._send_coalesced(client)
                    continue
                else:
                    client.wake.clear()
                    await client.wake.wait()
                    continue
                if text == "":  # dropped: too slow, or its token was revoked
                    code, reason = client.close_with
                    await client.ws.close(code=code, reason=reason)
                    return
                await self._send(client, text)
                if ids and self.receipts is not None and client.worker_id is not None:
                    self.receipts.delivered(client.worker_id, ids)
        except (WebSocketDisconnect, RuntimeError):
            pass
        except TimeoutError:
            log.warning("dropping websocket client worker=%s: took nothing for %g s",
                        client.worker_id, self._stall_after_s)
            self.dropped_clients += 1
            self._close(client, TOO_SLOW)
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, TimeoutError):
                async with asyncio.timeout(self._stall_after_s):
                    await client.ws.close(code=TOO_SLOW[0], reason=TOO_SLOW[1])

    async def _send(self, client: _Client, text: str) -> None:
        """Write one message; TimeoutError when the socket takes none for ``stall_after_s``
        (``asyncio.timeout``: a timer, not a task, per message)."""
        async with asyncio.timeout(self._stall_after_s):
            await client.ws.send_text(text)

    @staticmethod
    def _next_frame(client: _Client) -> tuple[str, tuple[int, ...]]:
        """The next message to write: the outbox's first, or for a client that takes batches
        everything that waits (up to ``MAX_BATCH``, never past a close) as one array."""
        text, ids = client.outbox.popleft()
        if not client.batch or not client.outbox or not text or not client.outbox[0][0]:
            return text, ids
        texts, all_ids = [text], list(ids)
        while client.outbox and len(texts) < MAX_BATCH and client.outbox[0][0]:
            text, ids = client.outbox.popleft()
            texts.append(text)
            all_ids += ids
        return _array(texts), tuple(all_ids)

    async def _send_coalesced(self, client: _Client) -> None:
        """Send the held latest states, then the summary. What arrives meanwhile queues behind
        them in the outbox (the client is no longer coalescing), so each key keeps its order."""
        held = [text for text, _ in client.latest.values()]
        folded, since = client.folded, client.coalescing_since or datetime.now(UTC)
        client.latest, client.folded, client.coalescing_since = {}, {}, None
        texts = [*held, summary_text(folded, since)]
        if client.batch:
            for start in range(0, len(texts), MAX_BATCH):
                await self._send(client, _array(texts[start:start + MAX_BATCH]))
            return
        for text in texts:
            await self._send(client, text)

    async def _catch_up(self, client: _Client) -> None:
        """Queue what this phone's person was notified of while no phone of theirs was here.
        The client is registered first, so a live message cannot fall between the two."""
        sink = self.receipts
        if client.worker_id is None or sink is None or client not in self._clients:
            return
        try:
            missed = await asyncio.wait_for(sink.catch_up(client.worker_id), CATCH_UP_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - whatever the sink raises, the socket goes on
            # (the page reloads its tickets anyway; receipts can wait)
            log.warning("catch-up failed worker=%s: %s", client.worker_id, exc)
            return
        for data, ids in missed:
            self._offer(client, _text("ticket", data), tuple(ids))

    async def _drain_incoming(self, client: _Client) -> None:
        """Read what a screen sends: phones send read receipts; anything else is ignored.
        Reading is also how we learn that a screen went away."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                text = await client.ws.receive_text()
                if client.worker_id is not None and self.receipts is not None:
                    receipt = _read_receipt(text)
                    if receipt is not None:
                        self.receipts.read(client.worker_id, *receipt)


def _frames(client: _Client) -> int:
    """How full a client's outbox is, in the frames it takes to send: a client that takes
    batches gets up to ``MAX_BATCH`` events a frame, so its limits count frames, not events
    (an intake batch at 1,000 alerts/s puts a hundred events in a wall's outbox at once,
    which one frame carries)."""
    n = len(client.outbox)
    return -(-n // MAX_BATCH) if client.batch else n


def _text(type_: WsEventType, data: dict[str, Any]) -> str:
    """A ``WsEvent``, serialised as its ``model_dump_json`` would (the same bytes; tests
    check), without building and validating the model first: the center's own event, made
    two to three times a pushed alert, where the model cost half of the serialising."""
    return to_json({"schema_version": SCHEMA_VERSION, "type": type_,
                    "at": datetime.now(UTC), "data": data}).decode()


def _array(texts: Sequence[str]) -> str:
    """Events already serialised, as one JSON array (a batch frame)."""
    return "[" + ",".join(texts) + "]"


def _read_receipt(text: str) -> tuple[int | None, int | None] | None:
    """``{"type": "read", "notification_id": N, "ticket_id": T}`` (either or both) ->
    (N, T); None for anything else."""
    if len(text) > MAX_INCOMING:
        return None
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "read":
        return None
    ids = []
    for key in ("notification_id", "ticket_id"):
        value = msg.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
        ids.append(value if ok else None)
    return None if ids == [None, None] else (ids[0], ids[1])

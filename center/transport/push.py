"""Websocket fan-out to wall screens and phones.

Each client gets a bounded queue: a broadcast never waits for a slow screen, and a client that
falls a whole queue behind is dropped (it reconnects and reloads) rather than slowing the rest.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from center.domain.district import District
from center.services.auth import InvalidToken, Principal
from center.services.notify.service import ReceiptSink
from wire.protocol import WsEvent, WsEventType

log = logging.getLogger(__name__)

#: Longest message a screen may send (read receipts are tiny).
MAX_INCOMING = 1024
CATCH_UP_TIMEOUT_S = 5.0


#: How long a new socket may take to send its auth message before it is closed (4401).
AUTH_DEADLINE_S = 5.0
#: Longest auth message (a token is a few hundred bytes).
MAX_AUTH = 4096
#: Close code for no valid token (as HTTP 401), and for a token that is not ``worker_id``'s.
UNAUTHORIZED = 4401
FORBIDDEN = 4403


def auth_message(token: str) -> str:
    """The first message a client sends on ``/ws``: its bearer token."""
    return json.dumps({"type": "auth", "token": token})


async def authenticate(ws: WebSocket, principal_of: Callable[[str | None], Principal], *,
                       worker_id: str | None = None,
                       deadline_s: float = AUTH_DEADLINE_S) -> Principal | None:
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
    token = _auth_token(message.get("text"))
    if token is None:
        await _refuse(ws, UNAUTHORIZED, 'the first message must be {"type": "auth", "token": …}')
        return None
    try:
        principal = principal_of(token)
    except InvalidToken as exc:
        await _refuse(ws, UNAUTHORIZED, str(exc))
        return None
    if worker_id is not None and worker_id != principal.id:
        await _refuse(ws, FORBIDDEN, "worker_id is not the token's person")
        return None
    return principal


def _auth_token(text: str | None) -> str | None:
    if not text or len(text) > MAX_AUTH:
        return None
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "auth":
        return None
    token = msg.get("token")
    return token if isinstance(token, str) and token else None


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.close(code=code, reason=reason.encode()[:120].decode(errors="ignore"))


#: Close code and reason for a client dropped for being a whole queue behind.
TOO_SLOW = (1013, "too slow; reconnect")
#: Close code and reason for a client whose token was revoked (as for no valid token).
REVOKED = (UNAUTHORIZED, "token revoked; log in again")


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    worker_id: str | None  # None: sees everything (wall screen)
    queue: asyncio.Queue[tuple[str, tuple[int, ...]]] = field(default_factory=asyncio.Queue)
    queued_ids: set[int] = field(default_factory=set)  # notification ids already queued
    #: Leaders and department staff: which ticket events of others they see (their area).
    sees: Callable[[dict[str, Any]], bool] | None = None
    #: Whose token opened it, and its generation (``revoke`` closes it when that is revoked).
    person_id: str = ""
    generation: int = 0
    #: Why its sender task closes it when it finds the "" sentinel.
    close_with: tuple[int, str] = TOO_SLOW


def _ticket_filter(principal: Principal,
                   district: Callable[[], District]) -> Callable[[dict[str, Any]], bool] | None:
    if principal.person.role in ("micro_grid_leader", "grid_leader", "department_staff"):
        return lambda data: principal.sees_ticket_view(district(), data)
    return None


class Hub:
    def __init__(self, queue_size: int = 256) -> None:
        self._clients: set[_Client] = set()
        self._queue_size = queue_size
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
        text = _text(type_, data)
        for client in list(self._clients):
            if client.worker_id is None:
                if not walls:
                    continue
            elif client.worker_id not in recipients and not (
                    walls and type_ in ("ticket", "verdict", "clip") and client.sees is not None
                    and client.sees(data)):
                continue
            self._offer(client, text, ())

    def send_to(self, person_id: str, type_: WsEventType, data: dict[str, Any],
                notification_ids: Sequence[int]) -> int:
        """Queue a message for one person's phones only; returns how many phones got it. The
        ids are reported to ``receipts.delivered`` once the message is written to a socket."""
        text = _text(type_, data)
        sent = 0
        for client in list(self._clients):
            if client.worker_id == person_id:
                sent += self._offer(client, text, tuple(notification_ids))
        return sent

    def _offer(self, client: _Client, text: str, ids: tuple[int, ...]) -> bool:
        if ids and client.queued_ids.issuperset(ids):
            return False  # already on its way (a catch-up met the live message)
        try:
            client.queue.put_nowait((text, ids))
        except asyncio.QueueFull:
            log.warning("dropping slow websocket client worker=%s", client.worker_id)
            self.dropped_clients += 1
            self._close(client, TOO_SLOW)
            return False
        client.queued_ids.update(ids)
        return True

    def _close(self, client: _Client, why: tuple[int, str]) -> None:
        """Unregister a client and have its sender task close it (after nothing more)."""
        self._clients.discard(client)
        client.close_with = why
        # Make room for the sentinel that tells its sender task to close it.
        with contextlib.suppress(asyncio.QueueEmpty):
            client.queue.get_nowait()
        client.queue.put_nowait(("", ()))

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
                    district: Callable[[], District]) -> None:
        """Run one client until it disconnects or is dropped.

        One sender task per client drains its queue; this coroutine reads what the screen sends,
        which is also how it learns the screen went away. (A task and an ``asyncio.wait`` per
        message instead cost twice the CPU at 1,000 screens: docs/performance.md.) The socket
        is accepted and its person known (``authenticate``)."""
        worker_id = None if principal.is_wall else principal.id
        client = _Client(ws, worker_id, asyncio.Queue(self._queue_size),
                         sees=_ticket_filter(principal, district), person_id=principal.id,
                         generation=principal.generation)
        self._clients.add(client)
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
            self._clients.discard(client)

    async def _send_loop(self, client: _Client) -> None:
        try:
            while True:
                text, ids = await client.queue.get()
                if text == "":  # dropped: too slow, or its token was revoked
                    code, reason = client.close_with
                    await client.ws.close(code=code, reason=reason)
                    return
                await client.ws.send_text(text)
                if ids and self.receipts is not None and client.worker_id is not None:
                    self.receipts.delivered(client.worker_id, ids)
        except (WebSocketDisconnect, RuntimeError):
            pass

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


def _text(type_: WsEventType, data: dict[str, Any]) -> str:
    return WsEvent(type=type_, at=datetime.now(UTC), data=data).model_dump_json()


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

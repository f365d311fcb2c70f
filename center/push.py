"""Websocket fan-out to wall screens and phones.

Each client gets a bounded queue: a broadcast never waits for a slow screen, and a client that
falls a whole queue behind is dropped (it reconnects and reloads) rather than slowing the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from center.protocol import WsEvent, WsEventType

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Client:
    ws: WebSocket
    worker_id: str | None  # None: sees everything (wall screen)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class Hub:
    def __init__(self, queue_size: int = 256) -> None:
        self._clients: set[_Client] = set()
        self._queue_size = queue_size
        self.dropped_clients = 0

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, type_: WsEventType, data: dict[str, Any], *,
                recipients: Collection[str] = ()) -> None:
        """Send to every wall screen, and to the phones of the people in ``recipients``."""
        text = WsEvent(type=type_, at=datetime.now(UTC), data=data).model_dump_json()
        for client in list(self._clients):
            if client.worker_id is not None and client.worker_id not in recipients:
                continue
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                log.warning("dropping slow websocket client worker=%s", client.worker_id)
                self._clients.discard(client)
                self.dropped_clients += 1
                # Make room for the sentinel that tells its sender task to close it.
                with contextlib.suppress(asyncio.QueueEmpty):
                    client.queue.get_nowait()
                client.queue.put_nowait("")

    async def serve(self, ws: WebSocket, worker_id: str | None) -> None:
        """Run one client until it disconnects or is dropped."""
        await ws.accept()
        client = _Client(ws, worker_id, asyncio.Queue(self._queue_size))
        self._clients.add(client)
        hello = WsEvent(type="hello", at=datetime.now(UTC), data={"worker_id": worker_id})
        await ws.send_text(hello.model_dump_json())
        receiver = asyncio.create_task(self._drain_incoming(ws))
        try:
            while True:
                getter = asyncio.create_task(client.queue.get())
                done, _ = await asyncio.wait({getter, receiver},
                                             return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    break
                text = getter.result()
                if text == "":  # dropped for being too slow
                    await ws.close(code=1013, reason="too slow; reconnect")
                    break
                await ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()
            self._clients.discard(client)

    @staticmethod
    async def _drain_incoming(ws: WebSocket) -> None:
        """Screens only listen; reading is how we learn that one went away."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await ws.receive_text()

"""The hub's coalescing keeps the newest state per key, not the last one offered: a replica's
relay can offer a ticket view it read just before this replica committed a newer change, after
that newer change was pushed (center/transport/replica_push.py). Without the version check a
coalescing wall got the older view as the ticket's final state and stayed stale until the
ticket changed again.

A client that takes batches counts its outbox in frames: an intake batch's events, offered at
once, do not make a wall that reads normally coalesce (and reload its lists on ``summary``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from center.transport.push import MAX_BATCH, Hub, _Client


class _Socket:
    """Takes every frame at once; ``summary_sent`` once the summary that ends coalescing is."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.summary_sent: asyncio.Event | None = None

    async def send_text(self, text: str) -> None:
        self.frames.append(text)
        if '"type":"summary"' in text and self.summary_sent is not None:
            self.summary_sent.set()


def _ticket(updated_at: str, alert_count: int) -> dict[str, Any]:
    return {"id": 7, "updated_at": updated_at, "alert_count": alert_count}


def _sent(hub: Hub, client: _Client, ws: _Socket) -> list[dict[str, Any]]:
    async def drain() -> None:
        ws.summary_sent = asyncio.Event()
        sender = asyncio.create_task(hub._send_loop(client))
        await asyncio.wait_for(ws.summary_sent.wait(), 5)
        sender.cancel()

    asyncio.run(drain())
    events: list[dict[str, Any]] = []
    for frame in ws.frames:
        parsed = json.loads(frame)
        events += parsed if isinstance(parsed, list) else [parsed]
    return events


def _coalescing_wall(batch: bool) -> tuple[Hub, _Client, _Socket]:
    hub = Hub(queue_size=4)  # high-water mark 2
    ws = _Socket()
    client = _Client(ws, None, person_id="op-01", batch=batch)  # type: ignore[arg-type]
    hub.register(client)
    # Fill the outbox to the mark (2 messages; 2 frames for a batch client): state events
    # now fold.
    for n in range(MAX_BATCH + 1 if batch else 2):
        hub.publish("broadcast", {"n": n})
    return hub, client, ws


def test_a_late_older_copy_never_replaces_the_newest_held() -> None:
    for batch in (False, True):
        hub, client, ws = _coalescing_wall(batch)
        hub.publish("ticket", _ticket("2026-12-07T10:00:00.000002+00:00", 5))
        hub.publish("ticket", _ticket("2026-12-07T10:00:00.000001+00:00", 4))  # read earlier
        events = _sent(hub, client, ws)
        assert [e["data"]["alert_count"] for e in events if e["type"] == "ticket"] == [5], batch
        assert [e["data"]["folded"] for e in events if e["type"] == "summary"] == [
            {"ticket": 1}]


def test_a_newer_copy_replaces_the_held_one() -> None:
    hub, client, ws = _coalescing_wall(batch=True)
    hub.publish("ticket", _ticket("2026-12-07T10:00:00+00:00", 4))
    hub.publish("ticket", _ticket("2026-12-07T10:00:01+00:00", 5))
    events = _sent(hub, client, ws)
    assert [e["data"]["alert_count"] for e in events if e["type"] == "ticket"] == [5]
    assert [e["data"]["folded"] for e in events if e["type"] == "summary"] == [{"ticket": 1}]


def test_a_batch_client_takes_an_intake_batch_without_coalescing() -> None:
    """500 alerts at open tickets, offered at once (an alert and a ticket view each): a batch
    wall queues them all as 5 frames; a wall that takes one event a frame coalesces."""
    for batch, coalesces in ((True, False), (False, True)):
        hub = Hub(queue_size=256)
        client = _Client(_Socket(), None, person_id="op-01", batch=batch)  # type: ignore[arg-type]
        hub.register(client)
        for n in range(500):
            hub.publish("alert", {"alert_id": f"a{n}", "camera_id": f"c{n}"})
            hub.publish("ticket", _ticket(f"2026-12-07T10:00:00.{n:06d}+00:00", n) | {"id": n})
        assert (hub.coalesced_clients == 1) is coalesces, batch
        if batch:
            assert len(client.outbox) == 1000 and not client.latest

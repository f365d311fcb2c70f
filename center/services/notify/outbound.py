"""Outbound notifiers: send each pending row, record every attempt, retry with backoff.

A row is one (ticket change, notifier). The sender takes ids from an ``asyncio.Queue``; each
attempt runs in its own task (at most ``concurrency`` at once), so a notifier that hangs or
fails only costs its own attempts, never ingest or the websocket. A failed attempt schedules the
next one ``backoff_s * backoff_factor ** (n - 1)`` seconds later (``call_later``, nothing
sleeps); the time is stored in ``next_attempt_at``, and rows still ``pending`` are picked up
again when the center starts. After ``max_attempts`` tries, or on an answer that retrying cannot
change (HTTP 4xx other than 408/429), the row is ``failed``.

Success is HTTP 2xx; for the group robots also ``errcode == 0`` in the JSON answer (they answer
200 with an error code when, for example, a signature is wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from center.platform.settings import DingTalkTarget, NotifierSettings, WebhookTarget, WeComTarget
from center.services.notify.formats import OutboundRequest, build
from center.store import notifications
from center.store.db import DatabaseError, Pool

log = logging.getLogger(__name__)

SNIPPET = 500
#: Wait before retrying a row whose attempt could not be read or recorded (database trouble).
DB_RETRY_S = 5.0

Target = WebhookTarget | WeComTarget | DingTalkTarget


@dataclass(frozen=True)
class Result:
    ok: bool
    status_code: int | None
    error: str
    response: str

    @property
    def permanent(self) -> bool:
        """An answer that another try would not change."""
        code = self.status_code
        return code is not None and 400 <= code < 500 and code not in (408, 429)


def judge(req: OutboundRequest, response: httpx.Response) -> Result:
    text = response.text[:SNIPPET]
    if not response.is_success:
        return Result(False, response.status_code, f"HTTP {response.status_code}", text)
    if req.check_errcode:
        try:
            code = json.loads(response.text).get("errcode")
        except (ValueError, AttributeError):
            return Result(False, response.status_code, "answer is not a JSON object", text)
        if code != 0:
            return Result(False, response.status_code, f"errcode {code}", text)
    return Result(True, response.status_code, "", text)


class Outbound:
    def __init__(self, settings: NotifierSettings, targets: list[Target]) -> None:
        self.settings = settings
        self.targets = {t.name: t for t in targets}
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._warned: set[str] = set()
        #: Set by ``Notifications.run`` before ``run()``.
        self.client: httpx.AsyncClient | None = None
        self.pool: Pool | None = None

    def enqueue(self, notification_id: int, delay_s: float = 0.0) -> None:
        if delay_s <= 0:
            self._queue.put_nowait(notification_id)
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            self._queue.put_nowait(notification_id)

        handle = loop.call_later(delay_s, fire)
        self._timers.add(handle)

    @property
    def _db(self) -> Pool:
        assert self.pool is not None, "Notifications.run() sets the pool"
        return self.pool

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return self.settings.backoff_s * self.settings.backoff_factor ** (attempt - 1)

    async def run(self) -> None:
        try:
            await self._resume()
            while True:
                nid = await self._queue.get()
                await self._slots.acquire()
                task = asyncio.create_task(self._attempt(nid), name=f"notify-{nid}")
                self._inflight.add(task)
                task.add_done_callback(self._done)
        finally:
            for handle in self._timers:
                handle.cancel()
            for task in list(self._inflight):
                task.cancel()
            for task in list(self._inflight):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("notification attempt crashed", exc_info=task.exception())

    async def _resume(self) -> None:
        """Pending rows from before a restart: each at its stored next attempt time."""
        while True:
            try:
                async with self._db.connection() as conn:
                    rows = await notifications.pending_outbound(conn)
                break
            except DatabaseError as exc:
                log.warning("cannot read pending notifications (will retry): %s", exc)
                await asyncio.sleep(DB_RETRY_S)
        now = datetime.now(UTC)
        for nid, next_at in rows:
            self.enqueue(nid, (next_at - now).total_seconds() if next_at else 0.0)
        if rows:
            log.info("resuming %d pending outbound notifications", len(rows))

    async def _attempt(self, nid: int) -> None:
        try:
            async with self._db.connection() as conn:
                row = await notifications.outbound(conn, nid)
        except DatabaseError as exc:
            log.warning("notification=%s: cannot read it (will retry): %s", nid, exc)
            self.enqueue(nid, DB_RETRY_S)
            return
        if row is None or row.status != "pending":
            return
        target = self.targets.get(row.notifier)
        if target is None:  # configured away since: leave it pending for a later config
            if row.notifier not in self._warned:
                self._warned.add(row.notifier)
                log.warning("pending notifications for notifier %r, which is not configured",
                            row.notifier)
            return
        attempt = row.attempts + 1
        result, started, ms = await self._send(target, row.payload)
        done = result.ok or result.permanent or attempt >= self.settings.max_attempts
        status = "delivered" if result.ok else "failed" if done else "pending"
        delay = 0.0 if done else self.backoff(attempt)
        next_at = None if done else started + timedelta(seconds=delay)
        try:
            async with self._db.connection() as conn, conn.transaction():
                await notifications.record_attempt(
                    conn, nid, target.name, attempt, started, ok=result.ok,
                    status_code=result.status_code, error=result.error,
                    response=result.response, duration_ms=ms, status=status,
                    next_attempt_at=next_at)
        except DatabaseError as exc:  # at-least-once: it may be sent again
            log.warning("notification=%s: cannot record attempt %d (will retry): %s",
                        nid, attempt, exc)
            self.enqueue(nid, DB_RETRY_S)
            return
        if result.ok:
            log.info("notification=%s notifier=%s delivered attempt=%d", nid, target.name,
                     attempt)
        elif done:
            log.warning("notification=%s notifier=%s failed after %d attempt(s): %s", nid,
                        target.name, attempt, result.error)
        else:
            log.info("notification=%s notifier=%s attempt=%d failed (%s), retry in %.3gs",
                     nid, target.name, attempt, result.error, delay)
            self.enqueue(nid, delay)

    async def _send(self, target: Target, payload: dict) -> tuple[Result, datetime, int]:
        assert self.client is not None, "Outbound.run() sets the client"
        started = datetime.now(UTC)
        t0 = time.monotonic()
        req = build(target, payload, int(started.timestamp() * 1000))
        try:
            response = await self.client.post(
                req.url, content=req.body(),
                headers={"Content-Type": "application/json; charset=utf-8", **req.headers},
                timeout=target.timeout_s)
            result = judge(req, response)
        except httpx.HTTPError as exc:  # never store the URL: robots' keys live in it
            error = f"{type(exc).__name__}: {exc}".replace(req.url, "<url>")
            result = Result(False, None, error[:SNIPPET], "")
        return result, started, int((time.monotonic() - t0) * 1000)

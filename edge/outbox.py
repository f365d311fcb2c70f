"""Store-and-forward: alerts wait on disk until the broker has acknowledged them.

One SQLite file (stdlib ``sqlite3``, WAL mode, ``synchronous=NORMAL``) per edge holds:

- ``outbox``: every alert message in the order the rules produced it. A row is deleted only
  when the broker acknowledged it (QoS 1 PUBACK, paho's ``on_publish``), so a crash, a broker
  outage or an edge restart loses nothing: on start the edge resends what is left, in order.
- ``violations``: each rule's open violation (alert id, seq, boxes), written in the same
  transaction as the message that changed it, so an edge restarted mid-violation resumes the
  same alert instead of sending a second ``new`` for the same parked bike.
- ``counters``: what the bound made the queue give up (see ``Outbox.put``).

The bound (``max_messages``, ``max_bytes``) is kept by, in this order: dropping the oldest
queued ``update`` (a later message of the same alert says more); removing the kept full frame
(training data, ``Alert.frame``) from the oldest ``new`` that still has one, then the snapshot
from the oldest ``new``/``end`` that still has one (the message survives, the picture is lost);
only then dropping the oldest ``new``/``end``, logged as an error. Messages in flight (handed
to the broker, not yet acknowledged) are never touched. Every drop is counted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL, payload BLOB NOT NULL, kind TEXT NOT NULL,
    alert_id TEXT NOT NULL, seq INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS violations (key TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
COUNTERS = ("dropped_updates", "stripped_frames", "stripped_snapshots", "dropped_new_end",
            "acked")


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes
    kind: str
    alert_id: str
    seq: int


class EdgeStore:
    """The edge's SQLite file; ``path=None`` keeps everything in memory (tests, offline runs).
    Thread-safe: the inference loop writes, paho's thread acknowledges, the sender reads."""

    def __init__(self, path: Path | None, *, max_messages: int = 20_000,
                 max_bytes: int = 256 * 1024 * 1024) -> None:
        self.path = path
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self.max_messages, self.max_bytes = max_messages, max_bytes
        #: Row ids handed to the broker and not yet acknowledged: the bound never drops them.
        self.inflight: set[int] = set()

    # --- outbox ---------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, kind: str, alert_id: str, seq: int,
            violation: tuple[str, dict[str, Any] | None] | None = None) -> int:
        """Queue one message (and, atomically, its rule's violation state); returns its id."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO outbox (topic, payload, kind, alert_id, seq, size) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, payload, kind, alert_id, seq, len(payload)))
                if violation is not None:
                    self._save_violation(*violation)
                self._enforce_bound()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return int(cur.lastrowid or 0)

    def _totals(self) -> tuple[int, int]:
        n, size = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        return int(n), int(size)

    def _over(self) -> bool:
        n, size = self._totals()
        return n > self.max_messages or size > self.max_bytes

    def _oldest(self, where: str) -> list[tuple[int, bytes, str, int]]:
        rows = self._db.execute(f"SELECT id, payload, alert_id, seq FROM outbox WHERE {where} "
                                "ORDER BY id LIMIT 64").fetchall()
        return [r for r in rows if r[0] not in self.inflight]

    def _strip(self, key: str, opener: str, counter: str) -> None:
        """While over the bound, set ``key`` to null in the oldest ``new``/``end`` that has it."""
        while self._over():
            rows = self._oldest("kind != 'update' AND "
                                f"instr(CAST(payload AS TEXT), '\"{key}\":{opener}') > 0")
            if not rows:
                break
            row_id, payload, alert_id, seq = rows[0]
            data = json.loads(payload)
            data[key] = None
            slim = json.dumps(data, separators=(",", ":")).encode()
            self._db.execute("UPDATE outbox SET payload = ?, size = ? WHERE id = ?",
                             (slim, len(slim), row_id))
            self._bump(counter)
            log.warning("outbox full: removed %s of alert_id=%s seq=%d", key, alert_id, seq)

    def _enforce_bound(self) -> None:
        while self._over():
            rows = self._oldest("kind = 'update'")
            if not rows:
                break
            self._db.execute("DELETE FROM outbox WHERE id = ?", (rows[0][0],))
            self._bump("dropped_updates")
            log.warning("outbox full: dropped update alert_id=%s seq=%d", rows[0][2], rows[0][3])
        self._strip("frame", '{', "stripped_frames")
        self._strip("snapshot_jpeg", '"', "stripped_snapshots")
        while self._over():
            rows = self._oldest("1 = 1")
            if not rows:
                break
            self._db.execute("DELETE FROM outbox WHERE id = ?", (rows[0][0],))
            self._bump("dropped_new_end")
            log.error("outbox full: DROPPED alert_id=%s seq=%d (raise outbox.max_messages / "
                      "max_bytes or fix the link to the broker)", rows[0][2], rows[0][3])

    def _bump(self, name: str, by: int = 1) -> None:
        self._db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = value + excluded.value", (name, by))

    def after(self, last_id: int, limit: int) -> list[Row]:
        """Queued messages after ``last_id``, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, kind, alert_id, seq FROM outbox "
                                    "WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)).fetchall()
        return [Row(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    def ack(self, row_id: int) -> None:
        with self._lock:
            self.inflight.discard(row_id)
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            self._bump("acked")

    def pending(self) -> int:
        with self._lock:
            return self._totals()[0]

    def counters(self) -> dict[str, int]:
        with self._lock:
            rows = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return {name: int(rows.get(name, 0)) for name in COUNTERS}

    # --- violations -----------------------------------------------------------------------

    def _save_violation(self, key: str, state: dict[str, Any] | None) -> None:
        if state is None:
            self._db.execute("DELETE FROM violations WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT INTO violations (key, state) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET state = excluded.state", (key, json.dumps(state)))

    def save_violation(self, key: str, state: dict[str, Any] | None) -> None:
        with self._lock:
            self._save_violation(key, state)

    def violations(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: json.loads(v) for k, v in
                    self._db.execute("SELECT key, state FROM violations").fetchall()}

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""SQL for alerts, evidence, dead letters and device status. Values always go as parameters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row

from center.store import partitions
from wire.protocol import Alert, CameraStatus, EdgeStatus


@dataclass(frozen=True)
class AlertRow:
    alert_id: UUID
    seq: int
    kind: str
    edge_id: str
    camera_id: str
    zone_id: str
    event_type: str
    label: str
    score: float
    bbox: list[float]
    started_at: datetime
    last_seen_at: datetime
    received_at: datetime
    ticket_id: int | None
    has_snapshot: bool
    #: Made up by a simulator (wire ``Alert.simulated``, migration 0026).
    simulated: bool = False


@dataclass(frozen=True)
class CameraStatusRow:
    camera_id: str
    edge_id: str
    state: str
    detail: str
    updated_at: datetime


# A batch's keys go into alert_keys first (migration 0010), in one statement and in key order
# (two centers storing the same messages take their locks in one order and cannot deadlock);
# only the messages whose key was new go into alerts, so a second copy of (alert_id, seq) is
# never stored, whatever time it names.
#
# The arrays go in binary (``%b``): psycopg dumps an array's elements in text one by one, at
# several µs each for uuids and timestamps (tens of µs per alert over a statement's columns),
# against about one µs in binary (docs/performance.md, "CPU per alert by stage").
_INSERT_KEYS = (
    "INSERT INTO alert_keys (alert_id, seq, digest, observed_at)"
    " SELECT * FROM unnest(%b::uuid[], %b::integer[], %b::bytea[], %b::timestamptz[])"
    " ON CONFLICT DO NOTHING RETURNING alert_id, seq")
# The new rows in one statement too, one array per column, each with its ticket (known by
# then: no UPDATE afterwards). A row per message through ``executemany``, then an UPDATE of the
# same rows for their tickets, cost psycopg ~30 µs of Python per row and PostgreSQL a second
# row version (docs/performance.md, "CPU per alert by stage"). The boxes go as text literals,
# cast per row (``unnest`` of a 2-D array would flatten them).
_INSERT_ALERTS = (
    "INSERT INTO alerts (alert_id, seq, kind, edge_id, camera_id, zone_id, event_type,"
    " label, score, bbox, started_at, observed_at, has_snapshot, simulated, ticket_id)"
    " SELECT alert_id, seq, kind, edge_id, camera_id, zone_id, event_type, label, score,"
    " bbox::real[], started_at, observed_at, has_snapshot, simulated, ticket_id"
    " FROM unnest(%b::uuid[], %b::integer[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::text[], %b::text[], %b::real[], %b::text[], %b::timestamptz[], %b::timestamptz[],"
    " %b::boolean[], %b::boolean[], %b::bigint[])"
    " AS v (alert_id, seq, kind, edge_id, camera_id, zone_id, event_type, label, score, bbox,"
    " started_at, observed_at, has_snapshot, simulated, ticket_id)"
    " ON CONFLICT DO NOTHING")

#: Most bytes of one dead-lettered payload that are stored (its size and SHA-256 are kept
#: whole): enough to read what went wrong, never a disk filled by one message.
DEAD_LETTER_PAYLOAD_MAX = 64 * 1024


def _bbox_literal(bbox: Sequence[float]) -> str:
    """The box as a PostgreSQL array literal, cheaper than psycopg's list dumper per row.
    ``repr`` of a float is exact and never has a comma or brace."""
    return "{" + ",".join(map(repr, map(float, bbox))) + "}"


def content_digest(alert: Alert) -> bytes:
    """What makes two copies of ``(alert_id, seq)`` the same message: everything but the
    pictures (snapshot, kept frame), which an edge's outbox may strip under pressure.
    ``simulated`` counts only when true, so a real edge's digest is the one it had before
    the field existed (a redelivery across the upgrade is not a conflict)."""
    leave_out = {"snapshot_jpeg", "frame"} if alert.simulated else {"snapshot_jpeg", "frame",
                                                                     "simulated"}
    return hashlib.sha256(alert.model_dump_json(exclude=leave_out).encode()).digest()


def _alert_columns(alerts: Sequence[Alert], ticket_of: Mapping[tuple[UUID, int], int]
                   ) -> tuple[list[object], ...]:
    """``_INSERT_ALERTS``'s parameters: one list per column."""
    return ([a.alert_id for a in alerts], [a.seq for a in alerts], [a.kind for a in alerts],
            [a.edge_id for a in alerts], [a.camera_id for a in alerts],
            [a.zone_id for a in alerts], [a.event_type for a in alerts],
            [a.label for a in alerts], [a.score for a in alerts],
            [_bbox_literal(a.bbox) for a in alerts], [a.started_at for a in alerts],
            [a.last_seen_at for a in alerts], [a.snapshot_jpeg is not None for a in alerts],
            [a.simulated for a in alerts],
            [ticket_of.get((a.alert_id, a.seq)) for a in alerts])


async def insert_alert(conn: AsyncConnection, alert: Alert) -> bool:
    """Store one alert message; False when it was already stored (a QoS 1 redelivery)."""
    return bool(await insert_alerts(conn, [alert]))


async def insert_alerts(conn: AsyncConnection, alerts: Sequence[Alert]) -> list[Alert]:
    """Store many alert messages, no ticket yet, in two round trips (``claim_keys``, then
    ``insert_rows``); returns those that were new, in order."""
    new = await claim_keys(conn, alerts)
    await insert_rows(conn, new)
    return new


async def claim_keys(conn: AsyncConnection, alerts: Sequence[Alert]) -> list[Alert]:
    """The messages whose ``(alert_id, seq)`` is new, in order, their keys taken in one
    statement: only these are to be stored (``insert_rows``, in the same transaction). A
    message stored before (a QoS 1 redelivery) or twice in ``alerts`` counts once: the first
    copy is the one stored."""
    if not alerts:
        return []
    first: dict[tuple[UUID, int], Alert] = {}
    for a in alerts:
        first.setdefault((a.alert_id, a.seq), a)
    keys = sorted(first)
    cur = await conn.execute(_INSERT_KEYS, (
        [k[0] for k in keys], [k[1] for k in keys], [content_digest(first[k]) for k in keys],
        [first[k].last_seen_at for k in keys]))
    fresh = {(r[0], r[1]) for r in await cur.fetchall()}
    return [a for a in alerts if (key := (a.alert_id, a.seq)) in fresh and first[key] is a]


async def insert_rows(conn: AsyncConnection, new: Sequence[Alert],
                      ticket_of: Mapping[tuple[UUID, int], int] | None = None) -> None:
    """Store the messages ``claim_keys`` returned, each with its ticket (``ticket_of``, by
    ``(alert_id, seq)``; none where missing), and their pictures."""
    if not new:
        return
    await conn.execute(_INSERT_ALERTS, _alert_columns(new, ticket_of or {}))
    snapshots = [(a.alert_id, a.seq, a.snapshot_jpeg) for a in new if a.snapshot_jpeg is not None]
    if snapshots:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO alert_snapshots (alert_id, seq, jpeg) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING", snapshots)
    frames = [_frame_params(a) for a in new if a.frame is not None]
    if frames:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO alert_frames (alert_id, seq, camera_id, jpeg, width, height,"
                " blurred, boxes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
                " ON CONFLICT DO NOTHING", frames)


def _frame_params(alert: Alert) -> tuple[object, ...]:
    frame = alert.frame
    assert frame is not None
    boxes = json.dumps([b.model_dump(mode="json", exclude={"schema_version"})
                        for b in frame.boxes])
    return (alert.alert_id, alert.seq, alert.camera_id, frame.jpeg, frame.width, frame.height,
            frame.blurred, boxes)


async def conflicting(conn: AsyncConnection, repeats: Sequence[Alert]) -> list[Alert]:
    """Of messages whose ``(alert_id, seq)`` was stored before, those whose content differs
    from the stored copy (which is kept: the first copy wins, as with any idempotency key)."""
    if not repeats:
        return []
    cur = await conn.execute(
        "SELECT alert_id, seq, digest FROM alert_keys"
        " WHERE (alert_id, seq) IN (SELECT * FROM unnest(%s::uuid[], %s::integer[]))",
        ([a.alert_id for a in repeats], [a.seq for a in repeats]))
    stored = {(r[0], r[1]): r[2] for r in await cur.fetchall()}
    return [a for a in repeats
            if (d := stored.get((a.alert_id, a.seq))) is not None
            and bytes(d) != content_digest(a)]


def _text(value: str) -> str:
    """Any Python text as text PostgreSQL takes: NUL and lone surrogates escaped."""
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


async def dead_letter(conn: AsyncConnection, topic: str, payload: bytes, reason: str) -> None:
    """Keep a refused message: the first ``DEAD_LETTER_PAYLOAD_MAX`` bytes, its size and
    SHA-256. Topic and reason are escaped, so storing the refusal itself cannot fail."""
    await conn.execute(
        "INSERT INTO dead_letters (topic, payload, payload_size, payload_sha256, reason)"
        " VALUES (%s, %s, %s, %s, %s)",
        (_text(topic)[:1000], payload[:DEAD_LETTER_PAYLOAD_MAX], len(payload),
         hashlib.sha256(payload).digest(), _text(reason)[:4000]),
    )


async def upsert_camera_status(conn: AsyncConnection, status: CameraStatus) -> None:
    await conn.execute(
        "INSERT INTO camera_status (camera_id, edge_id, state, detail, updated_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (camera_id) DO UPDATE SET"
        " edge_id = EXCLUDED.edge_id, state = EXCLUDED.state, detail = EXCLUDED.detail,"
        " updated_at = EXCLUDED.updated_at WHERE camera_status.updated_at <= EXCLUDED.updated_at",
        (status.camera_id, status.edge_id, status.state, status.detail, status.at),
    )


async def edge_states(conn: AsyncConnection) -> dict[str, str]:
    """Each edge's last reported state (online / offline), by edge id."""
    cur = await conn.execute("SELECT edge_id, state FROM edge_status")
    return {r[0]: r[1] for r in await cur.fetchall()}


async def upsert_edge_status(conn: AsyncConnection, status: EdgeStatus) -> list[str]:
    """Record an edge's state; when it went offline, so did its cameras (returned)."""
    await conn.execute(
        "INSERT INTO edge_status (edge_id, state, updated_at) VALUES (%s, %s, now())"
        " ON CONFLICT (edge_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
        (status.edge_id, status.state),
    )
    if status.state != "offline":
        return []
    cur = await conn.execute(
        "UPDATE camera_status SET state = 'offline', detail = 'edge offline', updated_at = now()"
        " WHERE edge_id = %s AND state <> 'offline' RETURNING camera_id",
        (status.edge_id,),
    )
    return [r[0] for r in await cur.fetchall()]


_ALERT_COLS = ("alert_id, seq, kind, edge_id, camera_id, zone_id, event_type, label, score, bbox,"
               " started_at, observed_at AS last_seen_at, received_at, ticket_id, has_snapshot,"
               " simulated")


async def list_alerts(conn: AsyncConnection, *, limit: int = 50, camera_id: str | None = None,
                      kind: str | None = None, since: datetime | None = None) -> list[AlertRow]:
    where = ["TRUE"]
    args: list[object] = []
    for col, val in (("camera_id", camera_id), ("kind", kind)):
        if val is not None:
            where.append(f"{col} = %s")
            args.append(val)
    if since is not None:
        where.append("observed_at >= %s")
        args.append(since)
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(
        f"SELECT {_ALERT_COLS} FROM alerts WHERE {' AND '.join(where)}"
        " ORDER BY observed_at DESC, received_at DESC LIMIT %s",
        (*args, limit),
    )
    return await cur.fetchall()


async def latest_snapshot(conn: AsyncConnection, alert_id: UUID) -> bytes | None:
    """The newest evidence picture of an alert (its latest message that carried one)."""
    cur = await conn.execute(
        "SELECT jpeg FROM alert_snapshots WHERE alert_id = %s ORDER BY seq DESC LIMIT 1",
        (alert_id,),
    )
    row = await cur.fetchone()
    return None if row is None else bytes(row[0])


async def camera_statuses(conn: AsyncConnection) -> dict[str, CameraStatusRow]:
    cur = conn.cursor(row_factory=class_row(CameraStatusRow))
    await cur.execute("SELECT camera_id, edge_id, state, detail, updated_at FROM camera_status")
    return {r.camera_id: r for r in await cur.fetchall()}


async def ensure_partitions(conn: AsyncConnection) -> int:
    """The coming days' alert partitions (0 on TimescaleDB)."""
    return await partitions.ensure_daily(conn, "alerts")

"""Alert clips at the center: chunks from MQTT become one verified MP4 in the clip storage and a
row of ``alert_clips``; who may watch one; retention (docs/video.md "Alert clips").

A clip arrives as ``ClipChunk`` messages in any order, each carrying the whole clip's
description. Chunks are staged as files (``<dir>/partial/<clip_id>/<index>.part``, the
description beside them); when the last one is in, they are joined and the size and SHA-256
checked (``verified.mp4``). Then the uploader (``run_uploads``, a task of its own) hands the
video to the storage and writes the row, and the staging goes. The ingest never waits on the
storage: an object store that is slow or unreachable holds up no alert. A clip the storage
refuses stays staged and is tried again (after 1 s, doubling up to a minute), and again after
a restart; the error is logged once per outage. Each step can run again (a redelivered chunk,
a batch retried after a database outage), and a chunk of a clip already stored is
acknowledged and ignored.

Refused, with the reason (the ingest dead-letters the message; nothing else is lost): chunks
that do not validate (bad base64, oversized, inconsistent counts), that another edge sends for
a camera or alert not its own, that describe another clip than the earlier chunks of the same
id, and clips whose joined bytes do not match their SHA-256 (their staging is dropped: an edge
resending it starts afresh).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from center.domain.district import District
from center.services import live
from center.services.alert_intake import Rejected
from center.services.auth import Principal
from center.services.clip_storage import ClipStorage, ClipStorageError
from center.store import clips as store
from center.store.clips import AlertPlace, ClipRow
from center.store.db import Connection, DatabaseError, Pool
from wire.errors import describe
from wire.protocol import BROWSER_CODECS, MAX_ALERT_AGE, ClipChunk, time_window_problem

log = logging.getLogger(__name__)

#: Fields every chunk of one clip must agree on.
_DESCRIPTION = ("clip_id", "alert_id", "kind", "edge_id", "camera_id", "started_at",
                "ended_at", "codec", "content_type", "size", "sha256", "count")
#: In a clip's staging folder: its description, its joined and verified video, and the mark
#: that the storage has it (the row is next): a clip waiting for the uploader has one of the
#: last two.
_DESCRIBED, _VERIFIED, _PUT = "clip.json", "verified.mp4", "stored"
#: Pauses between the uploader's tries while the storage or the database fails.
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0
#: Clips the retention sweep reads at a time.
RETENTION_BATCH = 1000
#: Ids of the clips this center stored last, remembered against late redeliveries.
RECENT_CLIPS = 1000


@dataclass(frozen=True)
class StoredClip:
    row: ClipRow
    place: AlertPlace | None


def clip_event(stored: StoredClip) -> tuple[dict[str, Any], list[str]]:
    """The ``clip`` event of a stored clip and who hears it besides the walls, from whichever
    replica stored it (center/transport/replica_events.py): the case's leaders and
    department (the hub's ticket filter reads micro_grid_id, event_type, assignee_id and
    department_id) and its worker. The URL is the unsigned path: each page signs it for its
    own person."""
    place = stored.place
    data = clip_view(stored.row, clip_path(stored.row.clip_id))
    if place is not None:
        data |= {"event_type": place.event_type, "ticket_id": place.ticket_id,
                 "micro_grid_id": place.micro_grid_id, "assignee_id": place.assignee_id,
                 "department_id": place.department_id}
    return data, [place.assignee_id] if place is not None and place.assignee_id else []


#: ``hub.publish(type, data, recipients=...)`` (center/transport/push.py).
Publish = Callable[..., None]


class ClipService:
    """Receives chunks (the ingest, one at a time), keeps the clips (``run_uploads``), and
    tells the screens."""

    def __init__(self, pool: Pool, storage: ClipStorage, staging: Path,
                 publish: Publish | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.pool, self.storage, self.staging = pool, storage, staging
        staging.mkdir(parents=True, exist_ok=True)
        self.publish, self.now = publish, now
        self.duplicates = 0
        #: Why the last try to store a clip failed; None while storing works.
        self.problem: str | None = None
        self._wake = asyncio.Event()
        # A chunk redelivered while its clip is being stored passed the "already stored" check
        # before the row was in: staging it after the folder went would leave chunks behind.
        # So the folder goes, and the id joins these, under the lock staging takes.
        self._staging_lock = threading.Lock()
        self._recent: dict[UUID, None] = {}

    async def receive(self, edge_id: str, camera_id: str, payload: bytes,
                      now: datetime) -> None:
        """Take one chunk published under ``edge_id``/``camera_id`` (the caller has checked
        that the district gives that camera to that edge); the last one wakes the uploader.
        Raises ``Rejected`` (the ingest dead-letters the message)."""
        try:
            chunk = ClipChunk.model_validate_json(payload)
        except ValidationError as exc:
            raise Rejected(describe(exc, with_input=False)) from None
        if (chunk.edge_id, chunk.camera_id) != (edge_id, camera_id):
            raise Rejected(f"clip chunk names edge {chunk.edge_id}/camera {chunk.camera_id} "
                              f"but was published under {edge_id}/{camera_id}")
        if problem := time_window_problem(chunk.ended_at, now, MAX_ALERT_AGE, "ended_at"):
            raise Rejected(problem)
        async with self.pool.connection() as conn:
            if await store.exists(conn, chunk.clip_id):
                self.duplicates += 1
                log.debug("clip %s chunk %d: clip already stored", chunk.clip_id, chunk.index)
                return
            place = await store.alert_place(conn, chunk.alert_id)
        if place is not None and (place.edge_id, place.camera_id) != (edge_id, camera_id):
            raise Rejected(f"alert {chunk.alert_id} is camera {place.camera_id} of edge "
                              f"{place.edge_id}, not {camera_id} of {edge_id}")
        if await asyncio.to_thread(self._stage, chunk):
            self._wake.set()

    async def run_uploads(self) -> None:
        """For as long as the center runs: store the verified clips waiting in the staging
        folder (those a restart left first), each as soon as its last chunk is in; after a
        failure, again after a pause that doubles up to ``RETRY_MAX_S``. Checks the storage
        first, so a wrong endpoint, bucket or key is logged at start-up."""
        try:
            await asyncio.to_thread(self.storage.check)
            log.info("clip storage: %s", self.storage.where)
        except ClipStorageError as exc:
            log.error("%s; clips will wait in %s until it works", exc, self.staging)
        pause = RETRY_FIRST_S
        while True:
            self._wake.clear()
            if await self.store_waiting():
                pause = RETRY_FIRST_S
                await self._wake.wait()
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)

    def waiting_clips(self) -> int:
        """Verified clips in the staging folder that the storage has not taken yet."""
        return sum(1 for f in self.staging.iterdir() if _waiting(f))

    async def store_waiting(self) -> bool:
        """Store every verified clip waiting in the staging, oldest first; False when the
        storage or the database failed (the rest wait for the next try)."""
        waiting = sorted((f for f in self.staging.iterdir() if _waiting(f)),
                         key=lambda f: f.stat().st_mtime)
        for folder in waiting:
            try:
                await self._store(folder)
            except Exception as exc:  # storage or database down, or a bug: logged, retried
                if str(exc) != self.problem:
                    log.error("clip %s could not be stored; it waits in %s and is tried "
                              "again: %s", folder.name, folder, exc,
                              exc_info=not isinstance(exc, (OSError, DatabaseError)))
                self.problem = str(exc)
                return False
        if self.problem is not None and waiting:
            log.info("clip storage works again (%s): %d waiting clips stored",
                     self.storage.where, len(waiting))
            self.problem = None
        return True

    async def _store(self, folder: Path) -> None:
        """One verified clip: into the storage (unless a failed try already put it there),
        its row, then the staging goes and the screens are told."""
        row = _row(json.loads((folder / _DESCRIBED).read_text(encoding="utf-8")), self.now())
        if not (folder / _PUT).exists():
            await asyncio.to_thread(self.storage.put, row.storage_key, folder / _VERIFIED)
            (folder / _PUT).touch()
        async with self.pool.connection() as conn:
            inserted = await store.insert(conn, row)
            place = await store.alert_place(conn, row.alert_id)
        await asyncio.to_thread(self._unstage, row.clip_id, folder)
        if not inserted:
            return
        log.info("clip %s (%s of alert_id=%s, camera=%s) stored in %s: %d bytes, %s",
                 row.clip_id, row.kind, row.alert_id, row.camera_id, self.storage.where,
                 row.size, row.codec)
        self._push(StoredClip(row, place))

    def _push(self, stored: StoredClip) -> None:
        """Tell who may see the alert that its clip is in (``clip_event``)."""
        if self.publish is not None:
            data, recipients = clip_event(stored)
            self.publish("clip", data, recipients=recipients)

    def _unstage(self, clip_id: UUID, folder: Path) -> None:
        with self._staging_lock:
            self._recent[clip_id] = None
            if len(self._recent) > RECENT_CLIPS:
                del self._recent[next(iter(self._recent))]
            shutil.rmtree(folder, ignore_errors=True)

    def _stage(self, chunk: ClipChunk) -> bool:
        """Keep the chunk; True once every chunk is in and the joined video verified."""
        with self._staging_lock:
            if chunk.clip_id in self._recent:
                return False
            return self._stage_locked(chunk)

    def _stage_locked(self, chunk: ClipChunk) -> bool:
        folder = self.staging / str(chunk.clip_id)
        folder.mkdir(exist_ok=True)
        description = chunk.model_dump(mode="json", include=set(_DESCRIPTION))
        known = folder / _DESCRIBED
        if known.exists():
            earlier = json.loads(known.read_text(encoding="utf-8"))
            if earlier != description:
                differ = sorted(k for k in description if description[k] != earlier.get(k))
                raise Rejected(f"chunk {chunk.index} of clip {chunk.clip_id} describes "
                                  f"another clip than its earlier chunks ({', '.join(differ)})")
        else:
            _write_atomic(known, json.dumps(description).encode())
        if _waiting(folder):  # a redelivered chunk of a clip the uploader has in hand
            return False
        part = folder / f"{chunk.index}.part"
        if not part.exists():
            _write_atomic(part, chunk.data)
        if sum(1 for _ in folder.glob("*.part")) < chunk.count:
            return False
        joined = folder / f"joined-{uuid4().hex}.tmp"  # replicas sharing the folder: one each
        digest = hashlib.sha256()
        with open(joined, "wb") as out:
            for index in range(chunk.count):
                data = (folder / f"{index}.part").read_bytes()
                digest.update(data)
                out.write(data)
        size = joined.stat().st_size
        if size != chunk.size or digest.hexdigest() != chunk.sha256:
            shutil.rmtree(folder, ignore_errors=True)
            raise Rejected(f"clip {chunk.clip_id}: its {chunk.count} chunks join to {size} "
                              f"bytes with sha256 {digest.hexdigest()}, not the {chunk.size} "
                              f"bytes with sha256 {chunk.sha256} it was sent as; dropped")
        joined.replace(folder / _VERIFIED)
        for part in folder.glob("*.part"):
            part.unlink()
        return True

    async def sweep(self, now: datetime, retention_days: int | None,
                    partial_max_age_s: float) -> int:
        """Drop staged chunks of clips that never completed (after ``partial_max_age_s``),
        and clips stored more than ``retention_days`` ago (None: keep them): each video from
        the storage, then its row, so one the storage could not delete keeps its row and
        goes at the next sweep (the ``ClipStorageError`` ends this one). A verified clip
        still waiting for the storage stays as long as a stored one would. Returns how many
        stored clips went."""
        cutoff = time.time() - partial_max_age_s
        kept_until = (None if retention_days is None
                      else time.time() - retention_days * 86400)
        for folder in self.staging.iterdir():
            if not folder.is_dir():
                continue
            if _waiting(folder):
                if kept_until is not None and folder.stat().st_mtime < kept_until:
                    log.warning("clip %s waited for the clip storage longer than its "
                                "retention (%s days); dropped", folder.name, retention_days)
                    shutil.rmtree(folder, ignore_errors=True)
            elif folder.stat().st_mtime < cutoff:
                log.warning("clip %s never completed; its staged chunks are dropped",
                            folder.name)
                shutil.rmtree(folder, ignore_errors=True)
        if retention_days is None:
            return 0
        removed = 0
        while True:
            async with self.pool.connection() as conn:
                old = await store.stored_before(conn, now - timedelta(days=retention_days),
                                                RETENTION_BATCH)
            for clip_id, key in old:
                await asyncio.to_thread(self.storage.delete, key)
                async with self.pool.connection() as conn:
                    await store.delete(conn, clip_id)
                removed += 1
            if len(old) < RETENTION_BATCH:
                break
        if removed:
            log.info("clip retention: %d clips older than %s days removed from %s", removed,
                     retention_days, self.storage.where)
        return removed


def _waiting(folder: Path) -> bool:
    """Whether a staging folder holds a whole, verified clip the storage does not have yet
    (or whose row is not written yet)."""
    return (folder / _VERIFIED).exists() or (folder / _PUT).exists()


def _row(description: dict[str, Any], stored_at: datetime) -> ClipRow:
    """A verified clip's row, from the description its chunks carried."""
    started_at = datetime.fromisoformat(description["started_at"])
    clip_id = UUID(description["clip_id"])
    return ClipRow(clip_id, UUID(description["alert_id"]), description["kind"],
                   description["edge_id"], description["camera_id"], started_at,
                   datetime.fromisoformat(description["ended_at"]), description["codec"],
                   description["content_type"], int(description["size"]),
                   description["sha256"], f"{started_at:%Y/%m/%d}/{clip_id}.mp4", stored_at)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all, through a temporary file of this writer's own (center
    replicas may share the staging folder, docs/scaling.md)."""
    tmp = path.with_name(f"{path.name}.{uuid4().hex}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


async def why_not_watch(conn: Connection, who: Principal, district: District,
                        place: AlertPlace) -> str | None:
    """Why ``who`` may not watch an alert's clips, or None. A clip is the alert's evidence, so
    whoever sees its case sees it (``Principal.sees_ticket``, the tickets' ``Scope``: leaders
    their areas, department staff their event types and the cases handed off to their
    department, a worker their own cases); besides, the camera's video is open to
    whoever may watch that camera live (``center.services.live.why_not_watch``: operators and
    engineers every camera, leaders and workers those of their area, anyone those of their
    open cases)."""
    if place.ticket_id is not None and who.sees_ticket(district, place.micro_grid_id,
                                                       place.event_type, place.assignee_id,
                                                       place.department_id):
        return None
    return await live.why_not_watch(conn, who, district, place.camera_id)


def clip_view(row: ClipRow, url: str) -> dict[str, Any]:
    """A clip as the API and the websocket show it (docs/video.md)."""
    return {"clip_id": str(row.clip_id), "alert_id": str(row.alert_id), "kind": row.kind,
            "camera_id": row.camera_id, "started_at": row.started_at.isoformat(),
            "ended_at": row.ended_at.isoformat(), "size": row.size, "codec": row.codec,
            "content_type": row.content_type,
            "browser_playable": row.codec in BROWSER_CODECS, "url": url}


def clip_path(clip_id: object) -> str:
    """The API path of a clip's video (signed for each viewer)."""
    return f"/api/v1/clips/{clip_id}.mp4"

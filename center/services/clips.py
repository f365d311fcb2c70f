"""Alert clips at the center: chunks from MQTT become one verified MP4 in the clip storage and a
row of ``alert_clips``; who may watch one; retention (docs/video.md "Alert clips").

A clip arrives as ``ClipChunk`` messages in any order, each carrying the whole clip's
description. Chunks are staged as files (``<dir>/partial/<clip_id>/<index>.part``, the
description beside them); when the last one is in, they are joined, the size and SHA-256 are
checked, the video goes to the storage and the row is written, then the staging is removed.
Each step can run again (a redelivered chunk, a batch retried after a database outage), and a
chunk of a clip already stored is acknowledged and ignored.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from center.domain.district import District
from center.services import live
from center.services.alert_intake import Rejected
from center.services.auth import Principal
from center.services.clip_storage import ClipStorage
from center.store import clips as store
from center.store.clips import AlertPlace, ClipRow
from center.store.db import Connection, Pool
from wire.errors import describe
from wire.protocol import BROWSER_CODECS, MAX_ALERT_AGE, ClipChunk, time_window_problem

log = logging.getLogger(__name__)

#: Fields every chunk of one clip must agree on.
_DESCRIPTION = ("clip_id", "alert_id", "kind", "edge_id", "camera_id", "started_at",
                "ended_at", "codec", "content_type", "size", "sha256", "count")


@dataclass(frozen=True)
class StoredClip:
    row: ClipRow
    place: AlertPlace | None


#: ``hub.publish(type, data, recipients=...)`` (center/transport/push.py).
Publish = Callable[..., None]


class ClipService:
    """Receives chunks (the ingest, one at a time), keeps the clips, and tells the screens."""

    def __init__(self, pool: Pool, storage: ClipStorage, staging: Path,
                 publish: Publish | None = None) -> None:
        self.pool, self.storage, self.staging = pool, storage, staging
        staging.mkdir(parents=True, exist_ok=True)
        self.publish = publish
        self.duplicates = 0

    async def receive(self, edge_id: str, camera_id: str, payload: bytes,
                      now: datetime) -> StoredClip | None:
        """Take one chunk published under ``edge_id``/``camera_id`` (the caller has checked
        that the district gives that camera to that edge); the stored clip once it is whole,
        else None. Raises ``Rejected`` (the ingest dead-letters the message)."""
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
                return None
            place = await store.alert_place(conn, chunk.alert_id)
        if place is not None and (place.edge_id, place.camera_id) != (edge_id, camera_id):
            raise Rejected(f"alert {chunk.alert_id} is camera {place.camera_id} of edge "
                              f"{place.edge_id}, not {camera_id} of {edge_id}")
        whole = await asyncio.to_thread(self._stage, chunk)
        if whole is None:
            return None
        key = f"{chunk.started_at:%Y/%m/%d}/{chunk.clip_id}.mp4"
        await asyncio.to_thread(self.storage.put, key, whole)
        row = ClipRow(chunk.clip_id, chunk.alert_id, chunk.kind, edge_id, camera_id,
                      chunk.started_at, chunk.ended_at, chunk.codec, chunk.content_type,
                      chunk.size, chunk.sha256, key, now)
        async with self.pool.connection() as conn:
            inserted = await store.insert(conn, row)
        shutil.rmtree(self.staging / str(chunk.clip_id), ignore_errors=True)
        if not inserted:
            return None
        log.info("clip %s (%s of alert_id=%s, camera=%s) stored: %d bytes, %s",
                 chunk.clip_id, chunk.kind, chunk.alert_id, camera_id, chunk.size, chunk.codec)
        stored = StoredClip(row, place)
        self._push(stored)
        return stored

    def _push(self, stored: StoredClip) -> None:
        """Tell who may see the alert that its clip is in: the walls, the case's leaders (the
        hub's ticket filter reads micro_grid_id, event_type and assignee_id) and its worker.
        The URL is the unsigned path: each page signs it for its own person."""
        if self.publish is None:
            return
        place = stored.place
        data = clip_view(stored.row, clip_path(stored.row.clip_id))
        if place is not None:
            data |= {"event_type": place.event_type, "ticket_id": place.ticket_id,
                     "micro_grid_id": place.micro_grid_id, "assignee_id": place.assignee_id}
        recipients = [place.assignee_id] if place is not None and place.assignee_id else []
        self.publish("clip", data, recipients=recipients)

    def _stage(self, chunk: ClipChunk) -> Path | None:
        """Keep the chunk; the joined, verified video once every chunk is in."""
        folder = self.staging / str(chunk.clip_id)
        folder.mkdir(exist_ok=True)
        description = chunk.model_dump(mode="json", include=set(_DESCRIPTION))
        known = folder / "clip.json"
        if known.exists():
            earlier = json.loads(known.read_text(encoding="utf-8"))
            if earlier != description:
                differ = sorted(k for k in description if description[k] != earlier.get(k))
                raise Rejected(f"chunk {chunk.index} of clip {chunk.clip_id} describes "
                                  f"another clip than its earlier chunks ({', '.join(differ)})")
        else:
            _write_atomic(known, json.dumps(description).encode())
        part = folder / f"{chunk.index}.part"
        if not part.exists():
            _write_atomic(part, chunk.data)
        if sum(1 for _ in folder.glob("*.part")) < chunk.count:
            return None
        whole = folder / "whole.mp4"
        digest = hashlib.sha256()
        with open(whole, "wb") as out:
            for index in range(chunk.count):
                data = (folder / f"{index}.part").read_bytes()
                digest.update(data)
                out.write(data)
        size = whole.stat().st_size
        if size != chunk.size or digest.hexdigest() != chunk.sha256:
            shutil.rmtree(folder, ignore_errors=True)
            raise Rejected(f"clip {chunk.clip_id}: its {chunk.count} chunks join to {size} "
                              f"bytes with sha256 {digest.hexdigest()}, not the {chunk.size} "
                              f"bytes with sha256 {chunk.sha256} it was sent as; dropped")
        return whole

    async def sweep(self, now: datetime, retention_days: int | None,
                    partial_max_age_s: float) -> int:
        """Drop clips stored more than ``retention_days`` ago (None: keep them) and staged
        chunks of clips that never completed; returns how many clips went."""
        keys: list[str] = []
        if retention_days is not None:
            async with self.pool.connection() as conn:
                keys = await store.delete_stored_before(conn, now - timedelta(
                    days=retention_days))
        for key in keys:
            await asyncio.to_thread(self.storage.delete, key)
        cutoff = time.time() - partial_max_age_s
        for folder in self.staging.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                log.warning("clip %s never completed; its staged chunks are dropped",
                            folder.name)
                shutil.rmtree(folder, ignore_errors=True)
        if keys:
            log.info("clip retention: %d clips older than %s days removed", len(keys),
                     retention_days)
        return len(keys)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


async def why_not_watch(conn: Connection, who: Principal, district: District,
                        place: AlertPlace) -> str | None:
    """Why ``who`` may not watch an alert's clips, or None. A clip is the alert's evidence, so
    whoever sees its case sees it (``Principal.sees_ticket``: leaders their areas, department
    staff their event types, a worker their own cases); besides, the camera's video is open to
    whoever may watch that camera live (``center.services.live.why_not_watch``: operators and
    engineers every camera, leaders and workers those of their area, anyone those of their
    open cases)."""
    if place.ticket_id is not None and who.sees_ticket(district, place.micro_grid_id,
                                                       place.event_type, place.assignee_id):
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

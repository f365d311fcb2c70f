"""Store-and-forward for alert clips: each MP4 waits on disk until the broker acknowledged
every one of its chunks, across broker outages and edge restarts.

Clips are files, not rows of the alert outbox (``edge.outbox``): a clip is megabytes, and
alerts must never queue behind one. The sender (``edge.publish.MqttPublisher``) sends clip
chunks only while no alert waits, at most ``max_inflight`` unacknowledged at a time.

On disk, in ``<state_dir>/clips/``: ``<clip_id>.mp4`` and ``<clip_id>.json`` (the clip's
description, ``ClipChunk`` without ``index``/``data``, plus the chunk indices already
acknowledged). The JSON is written last (and replaced atomically on every acknowledgement), so
a clip counts only once its MP4 is whole; leftovers of a crash are removed at start. A clip is
deleted once its last chunk is acknowledged; after a restart its unacknowledged chunks are sent
again (the center ignores chunks it already has: ``clip_id`` is ``uuid5(alert_id, kind)``).

The bound (``max_clips``, ``max_bytes``) drops the oldest waiting clips that have no chunk in
flight, logged as an error and counted, as the alert outbox drops its oldest messages.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wire.protocol import CLIP_CHUNK_BYTES, ClipChunk, clip_topic

log = logging.getLogger(__name__)

#: (clip_id, chunk index): what one acknowledgement is for.
ChunkKey = tuple[str, int]


@dataclass(frozen=True)
class OutgoingChunk:
    key: ChunkKey
    topic: str
    payload: bytes


class ClipOutbox:
    """Clips waiting for the broker. ``folder=None`` keeps them in a temporary folder, lost
    when the edge stops (an edge without ``state_dir``). Thread-safe: the clip cutter puts,
    the sender reads, paho's thread acknowledges."""

    def __init__(self, folder: Path | None, *, max_clips: int = 1000,
                 max_bytes: int = 2 * 1024 ** 3) -> None:
        self._temporary = tempfile.TemporaryDirectory(prefix="gridwatch-clips-") \
            if folder is None else None
        self.folder = Path(self._temporary.name) if self._temporary else Path(folder or "")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.persistent = folder is not None
        self.max_clips, self.max_bytes = max_clips, max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        self._clips: dict[str, dict[str, Any]] = {}
        #: Chunks handed to the sender and not yet acknowledged (never dropped by the bound).
        self._inflight: set[ChunkKey] = set()
        self._load()

    def _load(self) -> None:
        for leftover in self.folder.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        for meta in sorted(self.folder.glob("*.json")):
            try:
                doc = json.loads(meta.read_text(encoding="utf-8"))
                if not (self.folder / f"{doc['clip_id']}.mp4").is_file():
                    raise ValueError("its MP4 is missing")
            except (OSError, ValueError, KeyError) as exc:
                log.error("clip outbox: %s is unreadable (%s); removed", meta.name, exc)
                meta.unlink(missing_ok=True)
                continue
            self._clips[doc["clip_id"]] = doc
        for video in self.folder.glob("*.mp4"):
            if video.stem not in self._clips:  # the cutter died before writing its JSON
                video.unlink(missing_ok=True)
        if self._clips:
            log.info("clip outbox: %d clips from before the restart still to send",
                     len(self._clips))

    def temp_path(self, clip_id: str) -> Path:
        """Where the cutter writes a clip before ``put`` (removed at start if never put)."""
        return self.folder / f"{clip_id}.mp4.tmp"

    def put(self, description: dict[str, Any], video: Path) -> None:
        """Take the finished ``video`` (moved in) with its ``ClipChunk`` description (all
        fields but ``index`` and ``data``). A clip already waiting is replaced only while none
        of its chunks is acknowledged or in flight."""
        clip_id = str(description["clip_id"])
        with self._lock:
            if clip_id in self._clips and (self._clips[clip_id]["acked"]
                                           or any(k[0] == clip_id for k in self._inflight)):
                video.unlink(missing_ok=True)
                return
            doc = {**description, "clip_id": clip_id, "acked": []}
            os.replace(video, self.folder / f"{clip_id}.mp4")
            self._write(doc)
            self._clips[clip_id] = doc
            self._enforce_bound()

    def _write(self, doc: dict[str, Any]) -> None:
        tmp = self.folder / f"{doc['clip_id']}.json.tmp"
        tmp.write_text(json.dumps(doc, default=str), encoding="utf-8")
        os.replace(tmp, self.folder / f"{doc['clip_id']}.json")

    def _remove(self, clip_id: str) -> None:
        self._clips.pop(clip_id, None)
        (self.folder / f"{clip_id}.json").unlink(missing_ok=True)
        (self.folder / f"{clip_id}.mp4").unlink(missing_ok=True)

    def _enforce_bound(self) -> None:
        while (len(self._clips) > self.max_clips
               or sum(int(c["size"]) for c in self._clips.values()) > self.max_bytes):
            busy = {k[0] for k in self._inflight}
            oldest = next((c for c in self._clips if c not in busy), None)
            if oldest is None:
                break
            doc = self._clips[oldest]
            self._remove(oldest)
            self.dropped += 1
            log.error("clip outbox full: DROPPED clip %s (%s of alert_id=%s); raise "
                      "clip_outbox.max_clips / max_bytes or fix the link to the broker",
                      oldest, doc["kind"], doc["alert_id"])

    def next_chunks(self, limit: int) -> list[OutgoingChunk]:
        """Up to ``limit`` chunks not yet acknowledged nor in flight, oldest clip first."""
        out: list[OutgoingChunk] = []
        with self._lock:
            for clip_id, doc in self._clips.items():
                acked = set(doc["acked"])
                for index in range(int(doc["count"])):
                    key = (clip_id, index)
                    if index in acked or key in self._inflight:
                        continue
                    if len(out) >= limit:
                        return out
                    payload = self._payload(doc, index)
                    if payload is None:
                        break
                    self._inflight.add(key)
                    out.append(OutgoingChunk(
                        key, clip_topic(doc["edge_id"], doc["camera_id"]), payload))
        return out

    def _payload(self, doc: dict[str, Any], index: int) -> bytes | None:
        path = self.folder / f"{doc['clip_id']}.mp4"
        try:
            with open(path, "rb") as f:
                f.seek(index * CLIP_CHUNK_BYTES)
                data = f.read(CLIP_CHUNK_BYTES)
        except OSError as exc:
            log.error("clip outbox: %s unreadable (%s); clip dropped", path.name, exc)
            self._remove(doc["clip_id"])
            return None
        fields = {k: v for k, v in doc.items() if k != "acked"}
        return ClipChunk.model_validate({**fields, "index": index, "data": data}) \
            .model_dump_json().encode()

    def ack(self, key: ChunkKey) -> None:
        """The broker has the chunk; the clip goes once it has them all."""
        clip_id, index = key
        with self._lock:
            self._inflight.discard(key)
            doc = self._clips.get(clip_id)
            if doc is None or index in doc["acked"]:
                return
            doc["acked"].append(index)
            if len(doc["acked"]) >= int(doc["count"]):
                self._remove(clip_id)
                log.info("clip %s (%s of alert_id=%s) delivered", clip_id, doc["kind"],
                         doc["alert_id"])
            else:
                self._write(doc)

    def release(self, key: ChunkKey) -> None:
        """A chunk the sender could not hand to the broker: send it again later."""
        with self._lock:
            self._inflight.discard(key)

    def pending(self) -> int:
        """Clips not yet wholly acknowledged."""
        with self._lock:
            return len(self._clips)

    def close(self) -> None:
        with self._lock:
            left = len(self._clips)
        if left and not self.persistent:
            log.error("%d clips not yet delivered are LOST: they were kept in a temporary "
                      "folder (set state_dir to keep them across restarts)", left)
        if self._temporary is not None:
            self._temporary.cleanup()

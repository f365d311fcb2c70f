"""Where the center keeps alert clips' videos: a folder by default, behind a small interface an
S3-compatible object store can implement (docs/video.md "Alert clips").

Chunks arriving over MQTT are staged as files in ``<dir>/partial/<clip_id>/`` whatever the
storage; once a clip is whole and verified (size, SHA-256) it is handed to the storage under a
key (``YYYY/MM/DD/<clip_id>.mp4``). Serving asks the storage for a local file (the API streams
it with HTTP range requests) or else for a short-lived URL of its own (an object store's
presigned GET, which does ranges itself): ``local_path`` / ``presigned_url``.

An S3 implementation (boto3 or any S3 client, against AWS, MinIO, Ceph RGW...) would ``put``
with ``upload_file`` (multipart for large clips), ``delete`` with ``delete_object``, return
None from ``local_path`` and ``generate_presigned_url("get_object", ..., ExpiresIn=300)`` from
``presigned_url``; staging stays on local disk. Not implemented here (no store to test it
against in this project's tests).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol


class ClipStorage(Protocol):
    def put(self, key: str, staged: Path) -> None:
        """Take the verified video at ``staged`` (moved or uploaded, then removed)."""

    def delete(self, key: str) -> None:
        """Remove a video; one already gone is no error."""

    def local_path(self, key: str) -> Path | None:
        """The video as a local file, or None when the storage is remote."""

    def presigned_url(self, key: str) -> str | None:
        """A short-lived URL of the storage's own for a remote video, or None."""


class FolderStorage:
    """Videos as files under ``root`` (the default storage)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"clip storage key {key!r} leaves the storage folder")
        return path

    def put(self, key: str, staged: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staged, target)
        except OSError:  # staging on another file system
            shutil.move(str(staged), target)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def presigned_url(self, key: str) -> str | None:
        return None

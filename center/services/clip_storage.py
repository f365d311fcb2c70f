"""Where the center keeps alert clips' videos: a folder (the default) or an S3-compatible bucket
(AWS S3, MinIO, Ceph RGW), behind one small interface (docs/video.md "Object storage").

Chunks arriving over MQTT are staged as files in ``<dir>/partial/<clip_id>/`` whatever the
storage; once a clip is whole and verified (size, SHA-256) it is handed to the storage under a
key (``YYYY/MM/DD/<clip_id>.mp4``). Serving reads byte ranges back through ``read`` and the
center streams them itself (center/api/clips.py): the browser only ever talks to the center,
so a bucket on a private network needs no public endpoint, CORS rule or CSP exception.

Every method blocks (file system, HTTP): callers run them in a thread (``asyncio.to_thread``).
A store that cannot be reached raises ``ClipStorageError`` naming the store, the key and the
cause; a video that is not there raises ``ClipMissing``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from center.platform.settings import ClipS3Settings, ClipSettings

#: Bytes handed to the HTTP response at a time.
PIECE_BYTES = 64 * 1024


class ClipStorageError(OSError):
    """The storage could not do what was asked (unreachable, refused): worth retrying later."""


class ClipMissing(ClipStorageError):
    """The video of that key is not in the storage."""


class ClipStorage(Protocol):
    #: Where the videos are, for log lines and errors (a folder, ``s3://bucket/prefix``).
    where: str

    def put(self, key: str, staged: Path) -> None:
        """Take the verified video at ``staged`` (moved or uploaded, then removed)."""

    def delete(self, key: str) -> None:
        """Remove a video; one already gone is no error."""

    def read(self, key: str, first: int, last: int) -> Iterator[bytes]:
        """Bytes ``first``..``last`` (inclusive) of a video, in pieces. Opens the video before
        returning, so a missing or unreachable one raises here, before any byte is sent."""

    def check(self) -> None:
        """Raise ``ClipStorageError`` when the storage cannot be used (at start-up: a wrong
        endpoint, bucket or key is said before the first clip needs it)."""


class StorageProbe:
    """Whether the clip storage answers, for ``/healthz``: ``check()`` in a thread at most every
    ``every_s`` seconds, one at a time. ``/healthz`` never waits on it -- an unreachable bucket
    takes its connect timeout and retries, seconds -- it reads the last answer. A store that
    does not answer is a warning, not a failure: clips wait in the staging folder and alerts
    flow (center/services/clips.py), so the center stays ready."""

    def __init__(self, storage: ClipStorage, every_s: float = 10.0) -> None:
        self.storage, self.every_s = storage, every_s
        #: The last check's error; None when it answered (or before the first check ended).
        self.problem: str | None = None
        self.checked = False
        self._checked_at = -every_s
        self._running: asyncio.Task[None] | None = None

    def status(self) -> str | None:
        """The last check's problem, None when the storage answered; starts the next check in
        the background when the last one is ``every_s`` old."""
        if self._running is None and time.monotonic() - self._checked_at >= self.every_s:
            self._running = asyncio.create_task(self._check(), name="clip-storage-probe")
        return self.problem

    def close(self) -> None:
        """Stop a check in progress (the center is stopping)."""
        if self._running is not None:
            self._running.cancel()

    async def _check(self) -> None:
        try:
            await asyncio.to_thread(self.storage.check)
            self.problem = None
        except ClipStorageError as exc:
            self.problem = str(exc)
        finally:
            self.checked, self._checked_at, self._running = True, time.monotonic(), None


def open_storage(settings: ClipSettings) -> ClipStorage:
    """The storage the settings name (``clips.storage``)."""
    if settings.storage == "s3":
        assert settings.s3 is not None  # ClipSettings checks it
        return S3Storage(settings.s3)
    return FolderStorage(settings.folder() / "store")


class FolderStorage:
    """Videos as files under ``root`` (the default storage)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)
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

    def read(self, key: str, first: int, last: int) -> Iterator[bytes]:
        try:
            file = open(self._path(key), "rb")  # noqa: SIM115 - closed by _pieces
        except FileNotFoundError:
            raise ClipMissing(f"{key} is not in the clip folder {self.root}") from None
        file.seek(first)
        return _pieces(file, last - first + 1)

    def check(self) -> None:
        if not self.root.is_dir():
            raise ClipStorageError(f"the clip folder {self.root} is not a folder")


def _pieces(file: IO[bytes], length: int) -> Iterator[bytes]:
    with file:
        while length > 0:
            data = file.read(min(PIECE_BYTES, length))
            if not data:
                return
            length -= len(data)
            yield data


class S3Storage:
    """Videos as objects of an S3-compatible bucket, through boto3 (its client is thread-safe;
    every call here runs in a worker thread). Uploads go through ``upload_file`` (multipart
    past 8 MiB, parts retried); reads are ranged ``GetObject`` calls streamed as they come.

    Short timeouts and few retries: an unreachable store fails within seconds, and the clip
    waits in the staging folder for the next try (center/services/clips.py), rather than
    holding a thread for minutes."""

    def __init__(self, settings: ClipS3Settings) -> None:
        self.bucket, self.prefix = settings.bucket, settings.prefix
        self.where = f"s3://{settings.bucket}/{settings.prefix}" + (
            f" at {settings.endpoint_url}" if settings.endpoint_url else "")
        secret = settings.secret_access_key
        self.client: Any = boto3.session.Session().client(
            "s3", endpoint_url=settings.endpoint_url, region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
            config=Config(signature_version="s3v4", connect_timeout=5, read_timeout=30,
                          retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path" if settings.path_style else "auto"}))

    def _fail(self, doing: str, key: str, exc: Exception) -> ClipStorageError:
        return ClipStorageError(f"clip storage {self.where}: {doing} {self.prefix}{key} "
                                f"failed: {exc}")

    def put(self, key: str, staged: Path) -> None:
        try:
            self.client.upload_file(str(staged), self.bucket, self.prefix + key,
                                    ExtraArgs={"ContentType": "video/mp4"})
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("upload of", key, exc) from exc
        staged.unlink()

    def delete(self, key: str) -> None:
        try:  # S3 answers a delete of a missing key with success
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("deletion of", key, exc) from exc

    def read(self, key: str, first: int, last: int) -> Iterator[bytes]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key,
                                            Range=f"bytes={first}-{last}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ClipMissing(f"{self.prefix}{key} is not in {self.where}") from None
            raise self._fail("read of", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("read of", key, exc) from exc
        return self._stream(answer["Body"], key)

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise ClipStorageError(f"clip storage {self.where}: the bucket cannot be used: "
                                   f"{exc}") from exc

    def _stream(self, body: Any, key: str) -> Iterator[bytes]:
        with body:
            try:
                yield from body.iter_chunks(PIECE_BYTES)
            except (BotoCoreError, ClientError) as exc:  # the answer broke off midway
                raise self._fail("read of", key, exc) from exc

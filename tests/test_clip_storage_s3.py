"""Alert clips kept in an S3-compatible bucket (``clips.storage: s3``,
center/services/clip_storage.py ``S3Storage``): a clip that arrives over MQTT lands in the
bucket, is served with ranges through the center, and goes with retention; an unreachable
store loses nothing (the alert and its ticket are stored, the clip waits and is stored once the
store answers) and says why.

The store is moto's standalone S3 server (``ThreadedMotoServer``) on a loopback port, spoken to
by the real boto3 client over HTTP: the S3 path is tested against moto, not against MinIO or
AWS."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import Browser

from center.platform.settings import ClipS3Settings
from simulators.local_services import free_port
from tests import plain_http
from tests.browser import browser, new_page  # noqa: F401 - the fixture
from tests.conftest import RunningCenter, center_settings_for, serve_center
from tests.mqtt_helpers import Publisher
from tests.plain_http import TLS_CONTEXT
from tests.test_clips_center import CLIP, alert_in, chunks, send, stored_clips
from tests.waiting import wait_until
from wire.protocol import clip_id_for

BUCKET, PREFIX = "gridwatch-clips", "district-demo/"


class MotoS3:
    """moto's S3 server on a loopback port (the port stays the same across a restart)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        # moto keeps its buckets in the process, not the server: each test starts empty
        plain_http.post(f"{self.endpoint}/moto-api/reset").raise_for_status()
        self.client().create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def objects(self) -> dict[str, int]:
        listed = self.client().list_objects_v2(Bucket=BUCKET)
        return {o["Key"]: o["Size"] for o in listed.get("Contents", [])}

    def settings(self) -> dict[str, Any]:
        return {"bucket": BUCKET, "endpoint_url": self.endpoint, "region": "us-east-1",
                "prefix": PREFIX, "path_style": True, "access_key_id": "test",
                "secret_access_key": "test"}


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    store = MotoS3(free_port())
    try:
        yield store
    finally:
        store.stop()


def s3_center(db_dsn: str, mqtt_port: int, store: MotoS3, tmp_path: Path
              ) -> Any:
    return serve_center(center_settings_for(
        db_dsn, mqtt_port, clips={"dir": tmp_path / "center-clips", "storage": "s3",
                                  "s3": store.settings()}))


def signed_url(center: RunningCenter, alert_id: uuid.UUID) -> str:
    listed = center.client("op-01").get(f"/api/v1/alerts/{alert_id}/clips").json()
    assert len(listed) == 1, listed
    return str(listed[0]["url"])


def test_clip_is_stored_in_the_bucket_served_with_ranges_and_removed_by_retention(
        db_dsn: str, mqtt_broker: Any, s3: MotoS3, tmp_path: Path,
        browser: Browser) -> None:  # noqa: F811
    s3.start()
    with s3_center(db_dsn, mqtt_broker.port, s3, tmp_path) as center:
        publisher = Publisher(mqtt_broker.port)
        try:
            alert_id = alert_in(center, publisher)
            send(publisher, chunks(CLIP, alert_id))
            wait_until(lambda: len(stored_clips(center)) == 1, 30, "the clip to be stored")
        finally:
            publisher.close()
        clip_id = clip_id_for(alert_id, "violation")
        [(key, size)] = s3.objects().items()
        assert key.startswith(PREFIX) and key.endswith(f"/{clip_id}.mp4") and size == len(CLIP)
        # Nothing of it stays on the center's disk: no folder store, no staging.
        folder = center.settings.clips.folder()
        assert not (folder / "store").exists()
        assert not list((folder / "partial").iterdir())

        url = signed_url(center, alert_id)
        plain = httpx.Client(base_url=center.url, verify=TLS_CONTEXT)
        whole = plain.get(url)
        assert whole.status_code == 200 and whole.content == CLIP
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        part = plain.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206, part.text
        assert part.headers["content-range"] == f"bytes 100-199/{len(CLIP)}"
        assert part.content == CLIP[100:200]
        tail = plain.get(url, headers={"Range": "bytes=-1000"})
        assert tail.status_code == 206 and tail.content == CLIP[-1000:]
        past = plain.get(url, headers={"Range": f"bytes={len(CLIP) + 10}-"})
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{len(CLIP)}"
        assert plain.get(url.split("?")[0]).status_code == 401

        # Chromium plays it from the wall's page (its <video> asks for ranges itself).
        page, errors = new_page(browser, 1280, 800, center=center, person_id="op-01")
        page.goto(f"{center.url}/wall?lang=en")
        duration = page.evaluate("""(src) => new Promise((resolve, reject) => {
            const video = document.createElement("video");
            video.muted = true;
            video.onloadedmetadata = () => resolve(video.duration);
            video.onerror = () => reject(new Error(`video error ${video.error?.code}`));
            video.src = src;
            document.body.append(video);
        })""", url)
        assert 5 < duration < 8  # the 6 s street clip
        page.context.close()
        assert errors == []

        # The hourly retention sweep, a month on: the object and the row go. (In a thread of
        # its own: Playwright's sync API keeps an event loop running in this one.)
        with ThreadPoolExecutor(1) as pool:
            month_on = datetime.now(UTC) + timedelta(days=31)
            assert pool.submit(asyncio.run, sweep(db_dsn, s3, tmp_path, month_on)).result() == 1
        assert s3.objects() == {} and stored_clips(center) == []
        assert plain.get(url).status_code == 404


async def sweep(db_dsn: str, s3: MotoS3, tmp_path: Path, now: datetime) -> int:
    """What the center's hourly ``_sweep_clips`` runs, against the same bucket."""
    from center.services.clip_storage import S3Storage
    from center.services.clips import ClipService
    from center.store.db import open_pool

    pool = await open_pool(db_dsn, min_size=1, max_size=2)
    try:
        service = ClipService(pool, S3Storage(ClipS3Settings.model_validate(s3.settings())),
                              tmp_path / "sweep-partial")
        return await service.sweep(now, 30, 3600)
    finally:
        await pool.close()


def test_unreachable_store_loses_nothing_and_the_clip_is_stored_when_it_answers(
        db_dsn: str, mqtt_broker: Any, s3: MotoS3, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="center.services.clips")
    with s3_center(db_dsn, mqtt_broker.port, s3, tmp_path) as center:  # nothing listens yet
        publisher = Publisher(mqtt_broker.port)
        try:
            alert_id = alert_in(center, publisher)
            send(publisher, chunks(CLIP, alert_id))

            # Said at start-up, before any clip needs the store.
            wait_until(lambda: any("the bucket cannot be used" in r.getMessage()
                                   and s3.endpoint in r.getMessage() for r in caplog.records),
                       30, "the start-up check's error")

            def refused() -> str | None:
                return next((r.getMessage() for r in caplog.records
                             if "could not be stored" in r.getMessage()), None)

            wait_until(refused, 30, "the clip storage's refusal to be logged")
            reason = refused()
            assert reason is not None
            clip_id = clip_id_for(alert_id, "violation")
            assert str(clip_id) in reason and s3.endpoint in reason, reason
            assert "tried again" in reason and "upload of" in reason, reason
            # The alert and its ticket are stored; the clip waits, verified, in the staging.
            with psycopg.connect(db_dsn) as conn:
                ticket = conn.execute("SELECT ticket_id FROM alerts WHERE alert_id = %s",
                                      (alert_id,)).fetchone()
            assert ticket is not None and ticket[0] is not None
            assert center.client("op-01").get(
                f"/api/v1/tickets/{ticket[0]}").status_code == 200
            waiting = center.settings.clips.folder() / "partial" / str(clip_id)
            assert (waiting / "verified.mp4").stat().st_size == len(CLIP)
            assert stored_clips(center) == []
            with psycopg.connect(db_dsn) as conn:
                assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)

            s3.start()  # the store answers: the waiting clip goes in without being resent
            wait_until(lambda: len(stored_clips(center)) == 1, 90, "the clip to be stored")
            assert list(s3.objects().values()) == [len(CLIP)]
            assert not waiting.exists()
            assert any("works again" in r.getMessage() for r in caplog.records)
            url = signed_url(center, alert_id)
        finally:
            publisher.close()

        # The store gone again: the video cannot be read now (503, saying why), not "missing".
        s3.stop()
        answer = plain_http.get(center.url + url, headers={"Range": "bytes=0-99"}, timeout=60)
        assert answer.status_code == 503, answer.text
        assert "cannot be read now" in answer.json()["detail"]

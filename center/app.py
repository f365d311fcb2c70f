"""The center's FastAPI application: REST API, websocket, pages, MQTT ingest and timers.

``create_app(settings)`` builds everything from explicit settings (never at import time), so the
demo, the tests and production all run the same code with their own configuration; tests also
pass a ManualClock to walk tickets through their deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import version
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from center.api import (
    alerts,
    district,
    engineer,
    guard,
    indicators,
    intake,
    open311,
    pages,
    presence,
    tickets,
    verdicts,
    vocabulary,
)
from center.api import auth as auth_api
from center.api import clips as clips_api
from center.api import live as live_api
from center.api import map as map_api
from center.api import video_patrol as video_patrol_api
from center.api.deps import Center, RateLimits
from center.domain.context import Context
from center.domain.district import load_district
from center.domain.event_types import load_event_types
from center.domain.time_limits import load_time_limits
from center.platform import gc_pauses
from center.platform.clock import Clock, SystemClock
from center.platform.metrics import registry_for
from center.platform.settings import CenterSettings, ClipSettings, HttpSettings
from center.platform.tasks import cancel_and_wait
from center.services import auth, scheduler
from center.services.clip_storage import StorageProbe, open_storage
from center.services.clips import ClipService
from center.services.live import LiveService
from center.services.notify import Notifications
from center.services.presence import Presence
from center.services.views import Views
from center.store import alerts as queries
from center.store import db, district_store, migrate, replica_drain, replicas, retention
from center.store import read_pool as read_pool_store
from center.transport.fanout import Announcer
from center.transport.ingest import Ingest
from center.transport.push import Hub, authenticate
from center.transport.replica_push import LISTENER_NAME, ReplicaPush
from wire.paths import DASHBOARD_DIR

log = logging.getLogger(__name__)

STORAGE_CHECK_S = 3600
#: Of a drain's ``drain_s``, what is kept for closing websockets and the lifespan's shutdown.
DRAIN_CLOSE_S = 3.0


class SchemaOutOfDate(RuntimeError):
    pass


async def _maintain_storage(pool: db.Pool, ctx: Context,
                            settings: CenterSettings) -> None:
    """Make the coming days' alert partitions and apply retention, hourly, in one transaction
    that one replica at a time runs (another that finds it running skips the round:
    concurrent partition DDL would collide)."""
    while True:
        try:
            async with pool.connection() as conn:
                made = 0
                if await replicas.singleton(conn, "storage"):
                    made = await queries.ensure_partitions(conn)
                    await retention.sweep(conn, ctx.clock.now(),
                                          alert_days=settings.alert_retention_days,
                                          snapshot_days=settings.snapshot_retention_days,
                                          frame_days=settings.frame_retention_days,
                                          dead_letter_days=settings.dead_letter_retention_days)
            if made:
                log.info("created %d alert partitions", made)
        except db.DatabaseError as exc:
            log.warning("storage maintenance failed: %s", exc)
        await asyncio.sleep(STORAGE_CHECK_S)


async def _sweep_clips(clips: ClipService, ctx: Context, settings: ClipSettings,
                       pool: db.Pool) -> None:
    """Clip retention, hourly like the alerts', by one replica at a time (the lock is held
    by a transaction of its own for the sweep): old clips and never-completed chunks go."""
    while True:
        try:
            async with pool.connection() as conn:
                if await replicas.singleton(conn, "clip-retention"):
                    await clips.sweep(ctx.clock.now(), settings.retention_days,
                                      settings.partial_max_age_h * 3600)
        except (db.DatabaseError, OSError) as exc:
            log.warning("clip retention failed: %s", exc)
        await asyncio.sleep(STORAGE_CHECK_S)


def clip_service(pool: db.Pool, settings: ClipSettings, publish: Callable[..., None],
                 now: Callable[[], datetime]) -> ClipService:
    """The clips: staged in the clips folder, kept in the storage ``clips.storage`` names (a
    folder or an S3 bucket, docs/video.md)."""
    return ClipService(pool, open_storage(settings), settings.folder() / "partial", publish,
                       now)


def server_options(http: HttpSettings) -> dict[str, Any]:
    """uvicorn's settings for ``gridwatch center run`` (and the tests' centers).

    Proxy headers (``X-Forwarded-For``) are believed only from ``http.forwarded_allow_ips``,
    by default from nobody: uvicorn's own default believes them from any loopback peer, so
    anyone on the box (or any client of a local proxy that passes the header through) chose
    the address the rate limits count."""
    trusted = http.forwarded_allow_ips
    return {"host": http.host, "port": http.port, "proxy_headers": bool(trusted),
            "forwarded_allow_ips": ",".join(trusted) if trusted else "",
            "ws": "websockets-sansio", "ws_per_message_deflate": False,
            # asyncio's own loop, not uvloop: the MQTT ingest (aiomqtt) drives paho through
            # add_reader/add_writer, and uvloop's poll handle for a socket the broker closed
            # can end up closed without the reader ever being called (MagicStack/uvloop#552),
            # so the ingest never learnt that the broker had restarted and took nothing more:
            # 1 of 4 `sim drill --scenario broker-restart` runs (docs/simulators.md).
            "loop": "asyncio"}


async def drain(app: FastAPI, seconds: float) -> None:
    """The first part of a SIGTERM (``DrainingServer``): /healthz answers 503 "draining" from
    now on, and the ingest stores and acknowledges what the broker gave this center and takes
    no more (``Ingest.drain``), for up to ``seconds``. A replica leaves its share group only
    while another stays (``_may_leave_group``)."""
    app.state.draining = True
    until = time.monotonic() + seconds
    ingest: Ingest = app.state.ingest
    settings: CenterSettings = app.state.settings
    log.info("draining: not ready; finishing what the broker gave this center")
    leave = bool(settings.mqtt.share_group) and await _may_leave_group(app, settings)
    if not await ingest.drain(until, leave_group=leave):
        log.warning("drain incomplete after %.0fs: what is unacknowledged stays in the broker "
                    "session of client id %s", seconds, settings.mqtt.client_id)
    elif leave:
        log.info("drained: everything this replica was given is stored and acknowledged")
    else:
        log.info("drained in place: the batch in hand is stored; the broker keeps the rest "
                 "in the session of client id %s for its next start", settings.mqtt.client_id)


async def _may_leave_group(app: FastAPI, settings: CenterSettings) -> bool:
    """Whether another replica of the share group stays (center/store/replica_drain.py): the
    last one must keep its subscriptions, or the broker drops the group's messages until a
    replica is back. Marks this replica as draining for the others' decisions, with a
    connection held until the center exits (closed by the lifespan)."""
    me = settings.mqtt.client_id
    try:
        mark = await asyncio.wait_for(db.connect(
            settings.db.dsn, application_name=f"{replica_drain.DRAINING_NAME} {me}"), 5)
        app.state.drain_mark = mark
        async with mark.transaction():
            staying = await replica_drain.others_staying(mark, me, LISTENER_NAME)
    except (db.DatabaseError, TimeoutError) as exc:
        log.warning("drain: cannot tell whether another replica stays (%s): staying "
                    "subscribed; what the group gives this session waits for its next start",
                    exc)
        return False
    if not staying:
        log.warning("drain: the last replica of share group %s: staying subscribed, so the "
                    "broker keeps the group's messages in this session for its next start",
                    settings.mqtt.share_group)
    return staying > 0


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain before its shutdown on SIGTERM (Kubernetes' pod deletion, a
    rolling update, systemd's stop). uvicorn alone stops listening at once, closes the
    websockets with 1012 (service restart) and cancels the ingest; a replica's batch in hand
    and its inbox then stay unacknowledged in a session nobody resumes. Here SIGTERM first
    runs ``drain`` (still serving: /healthz says 503 "draining"), then hands over to uvicorn's
    own shutdown, which closes the websockets with 1012 so that clients reconnect through the
    balancer to another replica; all within ``drain_s``. A second signal, or SIGINT, stops at
    once as before."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_s: float) -> None:
        super().__init__(config)
        self._app, self._drain_s = app, drain_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if (sig != signal.SIGTERM or not self.started or self.should_exit
                or self._drain is not None or self._loop is None):
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._start_drain, sig)

    def _start_drain(self, sig: int) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_then_exit(sig), name="drain")

    async def _drain_then_exit(self, sig: int) -> None:
        started = time.monotonic()
        try:
            await drain(self._app, max(0.0, self._drain_s - DRAIN_CLOSE_S))
        except Exception:  # never keep the process from stopping
            log.exception("drain failed")
        finally:
            left = self._drain_s - (time.monotonic() - started)
            self.config.timeout_graceful_shutdown = max(1, int(left))
            super().handle_exit(sig, None)  # uvicorn's shutdown; re-raises SIGTERM at the end


def serve(app: FastAPI, settings: CenterSettings) -> None:
    """Run the center (``gridwatch center run``) until SIGTERM or SIGINT."""
    config = uvicorn.Config(app, log_config=None, **server_options(settings.http))
    DrainingServer(config, app, settings.drain_s).run()


def create_app(settings: CenterSettings, *, clock: Clock | None = None,
               timer_interval: float = 1.0) -> FastAPI:
    """The center app. ``timer_interval=0`` leaves timers to the caller (tests drive
    ``scheduler.fire_due`` themselves against a ManualClock)."""
    file_district = load_district(settings.district)  # fail fast on a broken file
    ctx = Context(district=file_district, event_types=load_event_types(settings.event_types),
                  limits=load_time_limits(settings.time_limits), clock=clock or SystemClock(),
                  presence=settings.presence)
    views = Views(ctx)
    hub = Hub(settings.ws_queue, settings.ws_stall_after_s)
    auth.install_log_redaction()
    configured_secret = (settings.secret_key.get_secret_value()
                         if settings.secret_key is not None else None)
    notify = Notifications(settings.notifiers, views, hub)  # a broken notifier file fails here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        todo = await asyncio.to_thread(migrate.migrate, settings.db.dsn, commit=False)
        if todo:
            raise SchemaOutOfDate(
                f"database schema is behind by {len(todo)} migration(s) "
                f"({', '.join(m.name for m in todo)}): run `gridwatch center migrate --commit`"
            )
        # Indicator reads on a replica (GRIDWATCH_DB__READ_DSN), checked before anything else
        # opens; without one they share the main pool.
        read_pool = (await read_pool_store.open_read_pool(settings.db.read_dsn)
                     if settings.db.read_dsn else None)
        # A replica's connections carry its name: its writes notify the other replicas
        # (center/transport/replica_push.py, migration 0028).
        replica = settings.mqtt.client_id if settings.mqtt.share_group else None
        dsn = replicas.replica_dsn(settings.db.dsn, replica) if replica else settings.db.dsn
        try:
            pool = await db.open_pool(dsn, min_size=settings.db.pool_min,
                                      max_size=settings.db.pool_max, wait_s=30)
        except BaseException:
            if read_pool is not None:  # opened above: the failed start must not leak it
                await read_pool.close()
            raise
        async with pool.connection() as conn, conn.transaction():
            stored = await district_store.load_district(conn)
            if stored is None:  # first start: the configured file becomes the district
                await district_store.import_district(conn, file_district, actor_id="system",
                                                     at=ctx.clock.now())
                stored = await district_store.load_district(conn)
            ctx.emergency_scopes = {m["scope"] for m in await district_store.emergency_modes(conn)
                                    if m["active"]}
            secret = await auth.signing_secret(conn, configured_secret)
            tokens = auth.TokenGenerations(on_revoke=hub.revoke)
            hub.generation_of = tokens.current
            await tokens.load(conn)  # before serving: no revoked token works after a restart
        assert stored is not None
        ctx.district = stored
        limits = RateLimits(pool, login_person=settings.auth.login_rate_person,
                            login_ip=settings.auth.login_rate_ip,
                            public_ip=settings.auth.public_rate_ip)
        announce = Announcer(views, hub, notify)
        center = Center(pool, ctx, views, hub, announce, secret=secret,
                        token_ttl_s=settings.auth.token_ttl_hours * 3600, limiter=limits,
                        tokens=tokens, hashing=auth.Hashing(settings.auth.hash_concurrency,
                                                            settings.auth.hash_queue))
        ingest = Ingest(settings.mqtt, pool, ctx, views, hub, announce,
                        stall_after_s=settings.ingest_stall_after_s)
        ingest.clips = center.clips = clip_service(pool, settings.clips, hub.publish,
                                                   ctx.clock.now)
        # Live view asks the edges on the ingest's connection, the center's only one.
        ingest.live = live = LiveService(settings.live, ingest.publish)
        app.state.center, app.state.ingest, app.state.live = center, ingest, live
        app.state.read_pool = read_pool or pool
        app.state.clip_probe = clip_probe = StorageProbe(center.clips.storage)
        app.state.draining, app.state.drain_mark = False, None
        app.state.presence = worker_presence = Presence(pool, ctx, settings.presence, hub.publish)
        tasks = [asyncio.create_task(ingest.run(), name="mqtt-ingest"),
                 asyncio.create_task(_maintain_storage(pool, ctx, settings),
                                     name="storage"),
                 asyncio.create_task(_sweep_clips(center.clips, ctx, settings.clips, pool),
                                     name="clip-retention"),
                 asyncio.create_task(center.clips.run_uploads(), name="clip-uploads"),
                 asyncio.create_task(notify.run(pool), name="notify"),
                 asyncio.create_task(tokens.listen(settings.db.dsn), name="token-revocations"),
                 asyncio.create_task(live.run(), name="live-streams"),
                 asyncio.create_task(worker_presence.run(), name="presence-storage")]
        app.state.replica_push = relay = (ReplicaPush(replica, pool, views, hub,
                                                      worker_presence) if replica else None)
        if relay is not None:
            tasks.append(asyncio.create_task(relay.run(settings.db.dsn), name="replica-push"))
        if timer_interval > 0:
            tasks.append(asyncio.create_task(
                scheduler.run(pool, ctx, announce, timer_interval), name="timers"))
        log.info("started: %d objects frozen out of the collector's full passes",
                 gc_pauses.freeze_startup_heap())
        try:
            yield
        finally:
            gc_pauses.thaw()
            clip_probe.close()
            await cancel_and_wait(tasks)
            if app.state.drain_mark is not None:  # after the listener: never "staying" alone
                await app.state.drain_mark.close()
            await pool.close()
            if read_pool is not None:
                await read_pool.close()

    app = FastAPI(title="gridwatch center", version=version("gridwatch"), lifespan=lifespan,
                  dependencies=[Depends(guard.reject_nul)],
                  docs_url=None, redoc_url=None)  # /docs from /vendor: center/api/pages.py
    guard.install(app, img_sources=[*settings.http.csp_img_sources,
                                   *settings.map.tile_origins()])
    app.state.settings = settings  # the engineer API publishes zone edits to the broker
    for module in (auth_api, alerts, clips_api, tickets, verdicts, intake, district, indicators,
                   open311,
                   engineer, vocabulary, live_api, video_patrol_api, presence, map_api, pages):
        app.include_router(module.router)
    if settings.cors_origins:  # closed by default: only the center's own pages call the API
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT"],
                           allow_headers=["Authorization", "Content-Type"],
                           allow_credentials=False)

    @app.get("/healthz")
    async def healthz(request: Request, response: Response) -> dict[str, Any]:
        center: Center = request.app.state.center
        db_ok = True
        try:
            async with center.pool.connection(timeout=2) as conn:
                await db.ping(conn)
        except db.DatabaseError:  # pool timeouts and closed pools too; the reason is in the log
            db_ok = False
        ingest: Ingest = request.app.state.ingest
        # What a supervisor acts on (503) and an operator reads (problems); a stalled ingest
        # is connected and has a database, yet stores nothing (docs/reliability.md).
        problems = [what for what, bad in (("database unreachable", not db_ok),
                                           ("not connected to the MQTT broker",
                                            not ingest.connected)) if bad]
        if stalled := ingest.stall():
            problems.append(f"ingest stalled: {stalled}")
        draining = request.app.state.draining
        if draining:  # SIGTERM: the balancer and Kubernetes take this replica out at once
            problems.insert(0, "draining: this center is stopping")
        # Clips wait in the staging folder while their store is away; alerts flow: a warning,
        # not a problem (the center stays ready).
        probe: StorageProbe = request.app.state.clip_probe
        waiting_clips = await asyncio.to_thread(center.clips.waiting_clips) if center.clips else 0
        clip_problem = probe.status() or (center.clips.problem
                                          if center.clips and waiting_clips else None)
        warnings = [(f"clip storage: {clip_problem}; {waiting_clips} clip(s) wait for it, "
                     "alerts are unaffected")] if clip_problem else []
        response.status_code = 503 if problems else 200
        status = "draining" if draining else "degraded" if problems or warnings else "ok"
        return {"status": status, "problems": problems, "warnings": warnings,
                "clip_storage": {"where": probe.storage.where,
                                 "answers": (probe.problem is None) if probe.checked else None,
                                 "waiting_clips": waiting_clips},
                "database": db_ok, "mqtt": ingest.connected, "ingest": vars(ingest.stats),
                "ingest_progress": ingest.progress(), "websocket_clients": hub.client_count,
                "replica": (request.app.state.replica_push.status()
                            if request.app.state.replica_push is not None else None)}

    metrics_registry = registry_for(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, worker_id: str | None = None) -> None:
        """What the person of the token in the first message may see (center/transport/push.py;
        docs/protocol.md). No valid token in time: closed with 4401."""
        center: Center = websocket.app.state.center
        opened = await authenticate(websocket, center.principal, worker_id=worker_id)
        if opened is not None:
            await hub.serve(websocket, opened.principal, lambda: center.ctx.district,
                            batch=opened.batch)

    app.mount("/static", StaticFiles(directory=DASHBOARD_DIR / "static", check_dir=False),
              name="static")
    app.mount("/vendor", StaticFiles(directory=DASHBOARD_DIR / "node_modules", check_dir=False),
              name="vendor")  # ECharts, Leaflet: `npm ci --prefix dashboard` (.ci/setup.sh)
    return app

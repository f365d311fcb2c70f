"""The center's FastAPI application: REST API, websocket, pages, and the MQTT ingest task.

``create_app(settings)`` builds everything from explicit settings (never at import time), so the
demo, the tests and production all run the same code with their own configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import FastAPI, HTTPException, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from center.db import migrate, queries
from center.district import load_district
from center.event_types import load_event_types
from center.ingest import Ingest
from center.paths import DASHBOARD_DIR
from center.push import Hub
from center.settings import CenterSettings
from center.tickets import service as tickets
from center.tickets.states import IllegalTransition
from center.views import Views

log = logging.getLogger(__name__)

PARTITION_CHECK_S = 3600


class SchemaOutOfDate(RuntimeError):
    pass


class TicketAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(min_length=1, max_length=32)
    actor_id: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)


async def _maintain_partitions(pool: AsyncConnectionPool) -> None:
    while True:
        try:
            async with pool.connection() as conn:
                made = await queries.ensure_partitions(conn)
            if made:
                log.info("created %d alert partitions", made)
        except psycopg.Error as exc:
            log.warning("partition maintenance failed: %s", exc)
        await asyncio.sleep(PARTITION_CHECK_S)


def create_app(settings: CenterSettings) -> FastAPI:
    district = load_district(settings.district)
    views = Views(district, load_event_types(settings.event_types))
    hub = Hub(settings.ws_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        todo = await asyncio.to_thread(migrate.migrate, settings.db.dsn, commit=False)
        if todo:
            raise SchemaOutOfDate(
                f"database schema is behind by {len(todo)} migration(s) "
                f"({', '.join(m.name for m in todo)}): run `gridwatch center migrate --commit`"
            )
        pool = AsyncConnectionPool(settings.db.dsn, min_size=settings.db.pool_min,
                                   max_size=settings.db.pool_max, open=False)
        await pool.open(wait=True, timeout=30)
        ingest = Ingest(settings.mqtt, pool, district, views, hub)
        app.state.pool, app.state.ingest = pool, ingest
        tasks = [asyncio.create_task(ingest.run(), name="mqtt-ingest"),
                 asyncio.create_task(_maintain_partitions(pool), name="partitions")]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await pool.close()

    app = FastAPI(title="gridwatch center", version="0.1.0", lifespan=lifespan)
    app.state.hub, app.state.views = hub, views

    @app.get("/healthz")
    async def healthz(request: Request, response: Response) -> dict[str, Any]:
        db_ok = True
        try:
            async with request.app.state.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception:  # any failure means "not healthy"; the reason is in the log
            db_ok = False
        ingest: Ingest = request.app.state.ingest
        ok = db_ok and ingest.connected
        response.status_code = 200 if ok else 503
        return {"status": "ok" if ok else "degraded", "database": db_ok,
                "mqtt": ingest.connected, "ingest": vars(ingest.stats),
                "websocket_clients": hub.client_count}

    @app.get("/api/v1/alerts")
    async def list_alerts(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        camera_id: str | None = None,
        kind: Literal["new", "update", "end"] | None = None,
    ) -> list[dict[str, Any]]:
        async with request.app.state.pool.connection() as conn:
            rows = await queries.list_alerts(conn, limit=limit, camera_id=camera_id, kind=kind)
        return [views.alert(r) for r in rows]

    @app.get("/api/v1/alerts/{alert_id}/snapshot.jpg",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {}})
    async def snapshot(request: Request, alert_id: UUID) -> Response:
        async with request.app.state.pool.connection() as conn:
            jpeg = await queries.latest_snapshot(conn, alert_id)
        if jpeg is None:
            raise HTTPException(404, f"no snapshot for alert {alert_id}")
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/api/v1/tickets")
    async def list_tickets(
        request: Request,
        open: bool = False,  # noqa: A002 - the public query parameter's name
        assignee_id: str | None = None,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        async with request.app.state.pool.connection() as conn:
            rows = await tickets.list_tickets(conn, open_only=open, assignee_id=assignee_id,
                                              state=state, limit=limit)
        return [views.ticket(t) for t in rows]

    @app.get("/api/v1/tickets/{ticket_id}")
    async def get_ticket(request: Request, ticket_id: int) -> dict[str, Any]:
        async with request.app.state.pool.connection() as conn:
            try:
                t = await tickets.get(conn, ticket_id)
            except tickets.TicketNotFound as exc:
                raise HTTPException(404, str(exc)) from None
            events = await tickets.ledger(conn, ticket_id)
        return {**views.ticket(t), "events": [
            {"at": e.at.isoformat(), "actor_id": e.actor_id, "action": e.action,
             "from_state": e.from_state, "to_state": e.to_state, "note": e.note,
             "alert_id": str(e.alert_id) if e.alert_id else None} for e in events]}

    @app.post("/api/v1/tickets/{ticket_id}/actions",
              responses={403: {}, 404: {}, 409: {"description": "not allowed in this state"}})
    async def act(request: Request, ticket_id: int, body: TicketAction) -> dict[str, Any]:
        role = views.role_of(body.actor_id)
        if role is None:
            raise HTTPException(403, f"unknown actor {body.actor_id!r}")
        async with request.app.state.pool.connection() as conn, conn.transaction():
            try:
                current = await tickets.get(conn, ticket_id, for_update=True)
                if role == "worker" and current.assignee_id != body.actor_id:
                    raise HTTPException(403, f"ticket {ticket_id} is not assigned to "
                                             f"{body.actor_id}")
                t = await tickets.apply(conn, ticket_id, body.action, actor_id=body.actor_id,
                                        role=role, note=body.note)
            except tickets.TicketNotFound as exc:
                raise HTTPException(404, str(exc)) from None
            except IllegalTransition as exc:
                raise HTTPException(409, str(exc)) from None
        data = views.ticket(t)
        hub.publish("ticket", data, worker_id=t.assignee_id)
        return data

    @app.get("/api/v1/cameras")
    async def cameras(request: Request) -> list[dict[str, Any]]:
        async with request.app.state.pool.connection() as conn:
            statuses = await queries.camera_statuses(conn)
        ids = list(district.cameras) + [c for c in statuses if c not in district.cameras]
        return [views.camera(c, statuses.get(c)) for c in ids]

    @app.get("/api/v1/workers")
    async def workers() -> list[dict[str, Any]]:
        return [{"id": p.id, "name": p.name, "micro_grid_id": p.micro_grid, "post": p.post}
                for p in district.people.values() if p.role == "worker"]

    @app.get("/api/v1/district")
    async def district_map() -> dict[str, Any]:
        return {"id": district.id, "name": district.name,
                "areas": district.feature_collection()}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, worker_id: str | None = None) -> None:
        await hub.serve(websocket, worker_id)

    @app.get("/", include_in_schema=False)
    @app.get("/wall", include_in_schema=False)
    async def wall() -> FileResponse:
        return FileResponse(DASHBOARD_DIR / "wall.html")

    @app.get("/phone", include_in_schema=False)
    async def phone() -> FileResponse:
        return FileResponse(DASHBOARD_DIR / "phone.html")

    app.mount("/static", StaticFiles(directory=DASHBOARD_DIR / "static", check_dir=False),
              name="static")
    return app

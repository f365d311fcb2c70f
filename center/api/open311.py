"""Open311 GeoReport v2 (JSON): event types as services, tickets as service requests.

Mapping, status rules and what is left out are in docs/open311.md. Errors use Open311's own
shape, a list of ``{"code", "description"}`` with the HTTP status in ``code``: 400 for a request
that cannot be served, 404 for something that does not exist. FastAPI's validation errors on
these routes are converted to that shape too, by the router's route class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from center.api.deps import Center, CenterDep, PublicForm
from center.services import tickets as service
from center.services.tickets import Ticket
from wire.errors import key_path

#: Our states as Open311's two: a request is "closed" once the problem is confirmed solved
#: (verified and after) or the case was voided; everything before that is "open".
CLOSED_STATES = frozenset({"verified", "evaluated", "closed", "void"})
STATUS_NOTES = {
    "registered": "已登记，等待派遣 Registered, waiting to be dispatched",
    "dispatched": "已派遣至网格员 Dispatched to the micro-grid worker",
    "accepted": "网格员已受理 Accepted by the worker",
    "handling": "正在现场处置 Being handled on site",
    "handled": "已处置，等待核查 Handled, waiting for verification",
    "verified": "已核查结案 Verified as solved",
    "evaluated": "已评价 Solved and rated",
    "closed": "已结案 Closed",
    "void": "已作废（误报或不属本辖区） Voided: false alarm, duplicate or not ours",
}
#: GB/T 30428 major categories by the first two digits of an event code (service "group").
GROUPS = {"05": "街面秩序 Street order"}
MAX_REQUESTS = 1000
MAX_DAYS = 90
MAX_DESCRIPTION = 4000


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, *descriptions: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": d} for d in descriptions],
                        status_code=status)


class Open311Route(APIRoute):
    """Every failure on these routes comes back in Open311's error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Open311Error as exc:
                return _error(exc.status, exc.description)
            except RequestValidationError as exc:
                # the field's path without its "body"/"query" origin, unless that is all
                return _error(400, *(
                    f"{key_path(tuple(e['loc'][1:]) or tuple(e['loc'][:1]))}: {e['msg']}"
                    for e in exc.errors()))
            except HTTPException as exc:  # FastAPI's, and the body limit's 413
                code = exc.status_code if exc.status_code in (401, 403, 404, 413, 429) else 400
                response = _error(code, str(exc.detail))
                response.headers.update(exc.headers or {})
                return response

        return route


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


def _jurisdiction(center: Center, jurisdiction_id: str | None) -> None:
    """One jurisdiction per endpoint: the parameter is optional, but a wrong one is a 404."""
    if jurisdiction_id and jurisdiction_id != center.ctx.district.id:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id!r} not found"
                                f" (this endpoint serves {center.ctx.district.id!r})")


def _service(center: Center, code: str) -> dict[str, Any]:
    et = center.ctx.event_types[code]
    return {"service_code": code, "service_name": et.zh, "description": et.en,
            "metadata": False, "type": "realtime",
            "keywords": ", ".join((et.zh, et.en, code)),
            "group": GROUPS.get(code[:2], f"类别 Category {code[:2]}")}


@router.get("/services.json")
async def services(center: CenterDep, jurisdiction_id: str | None = None) -> Any:
    _jurisdiction(center, jurisdiction_id)
    return [_service(center, code) for code in center.ctx.event_types]


@router.get("/services/{service_code}.json")
async def service_definition(center: CenterDep, service_code: str,
                             jurisdiction_id: str | None = None) -> Any:
    """No service has extra attributes (metadata false), so every definition is empty."""
    _jurisdiction(center, jurisdiction_id)
    if service_code not in center.ctx.event_types:
        raise Open311Error(404, f"service_code {service_code!r} not found")
    return {"service_code": service_code, "attributes": []}


def _w3(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


def _agency(center: Center, event_type: str) -> str:
    for dept in center.ctx.district.departments.values():
        if dept.active and event_type in dept.event_types:
            return dept.name
    return center.ctx.district.name


def _address(center: Center, t: Ticket) -> str:
    """Most specific first: camera, micro-grid, grid, district."""
    d = center.ctx.district
    parts = []
    cam = d.cameras.get(t.camera_id or "")
    if cam is not None:
        parts.append(cam.name or cam.id)
    for area_id in (t.micro_grid_id, t.grid_id):
        area = d.areas.get(area_id or "")
        if area is not None:
            parts.append(area.name)
    parts.append(d.name)
    return ", ".join(parts)


def _media_url(t: Ticket, base: str) -> str | None:
    """The photo a resident filed the request with, and nothing else.

    Never the case's public link (``/api/v1/public/tickets/{token}``): that token is the
    filing resident's alone, since it rates, and thereby closes, the case. Never a worker's
    handling photo or a camera's evidence either: those show people and are for staff."""
    if t.source != "resident" or t.photo_id is None:
        return None
    return f"{base}{router.prefix}/requests/{t.id}/photo"


def _request(center: Center, t: Ticket, base: str) -> dict[str, Any]:
    tz = ZoneInfo(center.ctx.district.timezone)
    closed = t.state in CLOSED_STATES
    cam = center.ctx.district.cameras.get(t.camera_id or "")
    closed_at = t.closed_at if t.state == "void" else (t.verified_at or t.closed_at)
    lat = t.lat if t.lat is not None else (cam.lat if cam else None)
    lon = t.lon if t.lon is not None else (cam.lon if cam else None)
    return {
        "service_request_id": str(t.id),
        "status": "closed" if closed else "open",
        "status_notes": STATUS_NOTES.get(t.state, t.state),
        "service_name": center.views.event_name(t.event_type),
        "service_code": t.event_type,
        "description": t.description or None,
        "agency_responsible": _agency(center, t.event_type),
        "service_notice": None,
        "requested_datetime": _w3(t.opened_at, tz),
        "updated_datetime": _w3(closed_at if closed else t.updated_at, tz),
        "expected_datetime": _w3(t.due_at, tz),
        "address": _address(center, t),
        "address_id": t.micro_grid_id,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": _media_url(t, base),
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _csv_values(name: str, raw: str | None) -> list[str]:
    values = [v.strip() for v in (raw or "").split(",") if v.strip()]
    if len(values) > MAX_REQUESTS:
        raise Open311Error(400, f"{name}: at most {MAX_REQUESTS} values")
    return values


def _w3_param(name: str, raw: str | None, tz: ZoneInfo) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise Open311Error(400, f"{name} {raw!r} is not a w3 date-time"
                                " (e.g. 2010-01-01T00:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


@router.get("/requests.json")
async def requests(
    center: CenterDep, request: Request,
    service_request_id: str | None = None, service_code: str | None = None,
    start_date: str | None = None, end_date: str | None = None, status: str | None = None,
    jurisdiction_id: str | None = None,
) -> Any:
    """Newest first, at most 1000, requested within at most 90 days (default: the last 90).
    ``service_request_id`` (comma-separated) overrides every other filter."""
    _jurisdiction(center, jurisdiction_id)
    tz = ZoneInfo(center.ctx.district.timezone)
    query: dict[str, Any] = {}
    ids = _csv_values("service_request_id", service_request_id)
    if ids:
        if not all(i.isdigit() for i in ids):
            raise Open311Error(400, "service_request_id must be numbers, comma-separated")
        query["ids"] = [int(i) for i in ids]
    else:
        start = _w3_param("start_date", start_date, tz)
        end = _w3_param("end_date", end_date, tz)
        if end is None:
            end = start + timedelta(days=MAX_DAYS) if start else center.ctx.clock.now()
        if start is None:
            start = end - timedelta(days=MAX_DAYS)
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > timedelta(days=MAX_DAYS):
            raise Open311Error(400, f"start_date to end_date may not span more than {MAX_DAYS}"
                                    " days")
        query["opened"] = (start, end)
        query["event_types"] = _csv_values("service_code", service_code)
        statuses = set(_csv_values("status", status))
        if statuses - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both (comma-separated)")
        if len(statuses) == 1:
            query["states" if "closed" in statuses else "not_states"] = CLOSED_STATES
    async with center.pool.connection() as conn:
        tickets = await service.newest_opened(conn, limit=MAX_REQUESTS, **query)
    base = _base(request)
    return [_request(center, t, base) for t in tickets]


@router.get("/requests/{service_request_id}.json")
async def request_detail(center: CenterDep, request: Request, service_request_id: str,
                         jurisdiction_id: str | None = None) -> Any:
    """A list of one, as the spec's example shows."""
    _jurisdiction(center, jurisdiction_id)
    async with center.pool.connection() as conn:
        t = await _ticket(conn, service_request_id)
    return [_request(center, t, _base(request))]


async def _ticket(conn: Any, service_request_id: str) -> Ticket:
    if not service_request_id.isdigit():
        raise Open311Error(404, f"service_request_id {service_request_id!r} not found")
    try:
        return await service.get(conn, int(service_request_id))
    except service.TicketNotFound:
        raise Open311Error(404, f"service_request_id {service_request_id} not found") from None


@router.get("/requests/{service_request_id}/photo", responses={404: {}})
async def request_photo(center: CenterDep, service_request_id: str) -> Response:
    """A ``media_url``: the photo the resident filed the request with. It shows that photo
    only, and grants nothing: rating stays with the resident's own link."""
    async with center.pool.connection() as conn:
        t = await _ticket(conn, service_request_id)
        found = (await service.attachment(conn, t.id, t.photo_id)
                 if t.source == "resident" and t.photo_id is not None else None)
    if found is None:
        raise Open311Error(404, f"service_request_id {service_request_id} has no public photo")
    return Response(found[1], media_type=found[0])


def _coordinate(name: str, raw: str | None, limit: float) -> float:
    try:
        value = float(raw or "")
    except ValueError:
        raise Open311Error(400, f"{name} must be a number (WGS84 degrees)") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise Open311Error(400, f"{name} {raw} is out of range")
    return value


@router.post("/requests.json", status_code=201, dependencies=[PublicForm])
async def create_request(center: CenterDep, request: Request) -> Any:
    """Form-encoded, per the spec: service_code and lat/long are needed (this server routes by
    coordinates; address_string alone is refused); description, email, first_name, last_name,
    phone, account_id, device_id and media_url are optional. api_key is not checked."""
    form = await request.form()
    field = {k: str(v) for k, v in form.items() if isinstance(v, str) and str(v).strip()}
    _jurisdiction(center, field.get("jurisdiction_id"))
    code = field.get("service_code")
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    if code not in center.ctx.event_types:
        raise Open311Error(404, f"service_code {code!r} not found")
    if "lat" not in field or "long" not in field:
        raise Open311Error(400, "lat and long are required: this server routes requests by"
                                " coordinates and cannot geocode address_string / address_id")
    lat = _coordinate("lat", field["lat"], 90)
    lon = _coordinate("long", field["long"], 180)
    description = field.get("description", "")
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    if center.ctx.district.micro_grid_at(lon, lat) is None:
        raise Open311Error(400, f"the location ({lat}, {lon}) is outside every grid of"
                                f" {center.ctx.district.name}")
    if "media_url" in field:
        description = (description + "\n" if description else "") + \
            f"media_url: {field['media_url']}"
    name = " ".join(field[k] for k in ("first_name", "last_name") if k in field)
    contact = ", ".join(field[k] for k in ("email", "phone") if k in field)
    reporter = " ".join(p for p in (name, f"<{contact}>" if contact else "") if p) or None
    async with center.pool.connection() as conn, conn.transaction():
        change = await service.intake(conn, center.ctx, source="open311", event_type=code,
                                      lon=lon, lat=lat, description=description,
                                      reporter=reporter, actor_id="open311")
    center.announce(change)
    t = change.ticket
    tz = ZoneInfo(center.ctx.district.timezone)
    area = center.ctx.district.areas.get(t.micro_grid_id or "")
    notice = (f"已派遣至{area.name if area else '网格'}，预计 {_w3(t.due_at, tz)} 前处置完毕。"
              f" Routed to {t.micro_grid_id}; expected to be fixed by {_w3(t.due_at, tz)}.")
    return [{"service_request_id": str(t.id), "service_notice": notice,
             "account_id": field.get("account_id")}]

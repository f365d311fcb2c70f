"""The district model: grids, micro-grids, cameras and people, and who owns a place.

One place for the question "whose phone does a case at this camera go to?". The district comes
from files an administrator edits (a YAML file plus micro-grid polygons as GeoJSON), validated
strictly so that a typo fails at start-up with the file and key named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from shapely.errors import ShapelyError
from shapely.geometry import Point, shape
from shapely.prepared import PreparedGeometry, prep

from wire.errors import describe, read_yaml
from wire.vocabulary import WEEKDAYS, Weekday

#: ``engineer`` manages cameras and zones (read-only elsewhere); ``admin`` does everything an
#: operator does (docs/security.md has the whole table).
Role = Literal["worker", "micro_grid_leader", "grid_leader", "department_staff", "operator",
               "engineer", "admin"]


class DistrictError(ValueError):
    """A district file is broken; the message names the file, the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Camera(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = ""
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    edge_id: str | None = None
    #: Overrides the point-in-polygon lookup (a camera on a boundary looking into one grid).
    micro_grid: str | None = None
    active: bool = True


class DutyWindow(_Strict):
    """When a person is on duty; windows may run past midnight (22:00-06:00)."""

    days: list[Weekday] = list(WEEKDAYS)
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        day = WEEKDAYS[local.weekday()]
        t = local.time()
        if self.start <= self.end:
            return day in self.days and self.start <= t < self.end
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


class Person(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    role: Role
    micro_grid: str | None = None
    grid: str | None = None
    post: Literal["A", "B"] | None = None
    department: str | None = None
    phone: str | None = None
    #: Empty: always on duty.
    duty: list[DutyWindow] = []
    active: bool = True

    def on_duty(self, at: datetime, tz: ZoneInfo) -> bool:
        if not self.active:
            return False
        local = at.astimezone(tz)
        return not self.duty or any(w.covers(local) for w in self.duty)


class Department(_Strict):
    """A line department (urban management, market supervision, ...) and what it handles."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    event_types: list[str] = []
    active: bool = True


class Area(_Strict):
    """A grid or micro-grid; ``parent`` links a micro-grid to its grid."""

    id: str
    name: str
    level: Literal["grid", "micro_grid"]
    #: "dedicated": a market, campus or industrial park run as its own grid.
    kind: Literal["normal", "dedicated"] = "normal"
    parent: str | None = None
    geometry: dict[str, Any]
    active: bool = True


class DistrictFile(_Strict):
    id: str
    name: str
    grids: str = Field(pattern=r"^[^\x00]+$")  # GeoJSON file, relative to the YAML file
    timezone: str = "Asia/Shanghai"
    cameras: list[Camera] = []
    people: list[Person] = []
    departments: list[Department] = []


class District(_Strict):
    id: str
    name: str
    timezone: str = "Asia/Shanghai"
    areas: dict[str, Area]
    cameras: dict[str, Camera]
    people: dict[str, Person]
    departments: dict[str, Department] = {}
    _micro_shapes: list[tuple[str, PreparedGeometry]] = PrivateAttr(default_factory=list)
    #: Who works in each micro-grid (active people, in the file's order) and which micro-grid
    #: each camera is in: a new camera case asks both, and the point-in-polygon test and the
    #: walk over everyone cost ~1 ms of the event loop per case in a town (issue 16). A
    #: district is never changed in place (a new import replaces it), so neither goes stale.
    _people_here: dict[str | None, list[Person]] = PrivateAttr(default_factory=dict)
    _camera_micro: dict[str, str | None] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> District:
        for a in self.areas.values():
            if a.parent is not None and a.parent not in self.areas:
                raise ValueError(f"area {a.id!r} has unknown parent {a.parent!r}")
        for c in self.cameras.values():
            if c.micro_grid is not None and c.micro_grid not in self.areas:
                raise ValueError(f"camera {c.id!r} names unknown micro_grid {c.micro_grid!r}")
        for p in self.people.values():
            for ref in (p.micro_grid, p.grid):
                if ref is not None and ref not in self.areas:
                    raise ValueError(f"person {p.id!r} names unknown area {ref!r}")
            if p.role == "worker" and p.micro_grid is None:
                raise ValueError(f"worker {p.id!r} needs a micro_grid")
            if p.department is not None and p.department not in self.departments:
                raise ValueError(f"person {p.id!r} names unknown department {p.department!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Asia" is a folder
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self

    def model_post_init(self, _context: Any) -> None:
        self._micro_shapes = [
            (a.id, prep(shape(a.geometry))) for a in self.areas.values()
            if a.level == "micro_grid" and a.active
        ]
        here: dict[str | None, list[Person]] = {}
        for p in self.people.values():
            if p.active:
                here.setdefault(p.micro_grid, []).append(p)
        self._people_here, self._camera_micro = here, {}

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> District:
        """A copy whose lookups follow its fields: pydantic copies private attributes as they
        are, so a copy with other people or cameras would route by the old ones."""
        copy = super().model_copy(update=update, deep=deep)
        copy.model_post_init(None)
        return copy

    def micro_grid_of(self, camera_id: str) -> str | None:
        """The micro-grid a camera belongs to: its override, else the polygon holding it."""
        if camera_id in self._camera_micro:
            return self._camera_micro[camera_id]
        cam = self.cameras.get(camera_id)
        if cam is None:
            return None
        found = cam.micro_grid if cam.micro_grid is not None else self.micro_grid_at(cam.lon,
                                                                                     cam.lat)
        self._camera_micro[camera_id] = found
        return found

    def micro_grid_at(self, lon: float, lat: float) -> str | None:
        """The micro-grid containing a point (a patrol photo, a resident's report)."""
        pt = Point(lon, lat)
        for aid, prepared in self._micro_shapes:
            if prepared.covers(pt):
                return aid
        return None

    def grid_of(self, micro_grid_id: str | None) -> str | None:
        area = self.areas.get(micro_grid_id or "")
        return area.parent if area else None

    def owner_of(self, micro_grid_id: str | None, at: datetime | None = None) -> Person | None:
        """Who gets a case in a micro-grid: the on-duty A post, else the on-duty B post, else
        the micro-grid leader (who is always reachable: the post never goes unowned)."""
        if micro_grid_id is None:
            return None
        tz = ZoneInfo(self.timezone)
        when = at or datetime.now(tz)
        here = self._people_here.get(micro_grid_id, ())
        for role, post in (("worker", "A"), ("worker", "B")):
            for p in here:
                if p.role == role and p.post == post and p.on_duty(when, tz):
                    return p
        return self.leader_of(micro_grid_id)

    def leader_of(self, micro_grid_id: str | None) -> Person | None:
        return next((p for p in self._people_here.get(micro_grid_id, ())
                     if p.role == "micro_grid_leader"), None)

    def escalation_targets(self, micro_grid_id: str | None, event_type: str,
                           level: int) -> list[Person]:
        """Level 1: the micro-grid leader; level 2: the grid leader and the staff of every
        department that handles this event type."""
        if level <= 1:
            leader = self.leader_of(micro_grid_id)
            return [leader] if leader else []
        grid = self.grid_of(micro_grid_id)
        depts = {d.id for d in self.departments.values()
                 if d.active and event_type in d.event_types}
        return [p for p in self.people.values() if p.active and (
            (p.role == "grid_leader" and p.grid == grid and grid is not None)
            or (p.role == "department_staff" and p.department in depts))]

    def people_in(self, area_id: str | None) -> list[Person]:
        """Everyone working in an area (a grid, a micro-grid, or the district when None)."""
        if area_id is None:
            return [p for p in self.people.values() if p.active]
        micro = {a.id for a in self.areas.values() if area_id in (a.id, a.parent)}
        return [p for p in self.people.values() if p.active and (
            p.micro_grid in micro or p.grid == area_id)]

    def feature_collection(self) -> dict[str, Any]:
        """The areas as GeoJSON, for the wall-screen map."""
        return {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": a.geometry,
                 "properties": {"id": a.id, "name": a.name, "level": a.level, "kind": a.kind,
                                "parent": a.parent}}
                for a in self.areas.values() if a.active
            ],
        }


def load_district(path: Path) -> District:
    """Read and validate a district; every failure is a DistrictError naming file and key."""
    path = Path(path)
    raw = read_yaml(path, DistrictError)
    try:
        spec = DistrictFile.model_validate(raw)
    except ValidationError as exc:
        raise DistrictError(f"{path}: {describe(exc)}") from None
    gpath = path.parent / spec.grids
    try:
        fc = json.loads(gpath.read_text(encoding="utf-8"))
        areas = {}
        for i, feat in enumerate(fc["features"]):
            props = feat.get("properties") or {}
            try:
                area = Area(geometry=feat["geometry"], **props)
                if not shape(area.geometry).is_valid:
                    raise ValueError("polygon is not valid (self-intersecting?)")
            except (ValidationError, ValueError, TypeError, KeyError, ShapelyError) as exc:
                detail = describe(exc) if isinstance(exc, ValidationError) else str(exc)
                raise DistrictError(f"{gpath}: features[{i}]: {detail}") from None
            areas[area.id] = area
    except OSError as exc:
        raise DistrictError(f"{path}: grids: cannot read {gpath}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError,
            RecursionError) as exc:
        raise DistrictError(f"{gpath}: not a GeoJSON FeatureCollection: {exc}") from None
    try:
        return District(
            id=spec.id, name=spec.name, timezone=spec.timezone, areas=areas,
            cameras={c.id: c for c in spec.cameras}, people={p.id: p for p in spec.people},
            departments={d.id: d for d in spec.departments},
        )
    except ValidationError as exc:
        raise DistrictError(f"{path}: {describe(exc)}") from None
    except ShapelyError as exc:
        raise DistrictError(f"{gpath}: bad geometry: {exc}") from None

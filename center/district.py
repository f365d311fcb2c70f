"""The district model: grids, micro-grids, cameras and people, and who owns a place.

One place for the question "whose phone does a case at this camera go to?". The district comes
from files an administrator edits (a YAML file plus micro-grid polygons as GeoJSON), validated
strictly so that a typo fails at start-up with the file and key named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from shapely.geometry import Point, shape
from shapely.prepared import PreparedGeometry, prep

Role = Literal["worker", "micro_grid_leader", "grid_leader"]


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


class Person(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    role: Role
    micro_grid: str | None = None
    grid: str | None = None
    post: Literal["A", "B"] | None = None
    phone: str | None = None


class Area(_Strict):
    """A grid or micro-grid; ``parent`` links a micro-grid to its grid."""

    id: str
    name: str
    level: Literal["grid", "micro_grid"]
    parent: str | None = None
    geometry: dict[str, Any]


class DistrictFile(_Strict):
    id: str
    name: str
    grids: str  # GeoJSON file, relative to the YAML file
    cameras: list[Camera] = []
    people: list[Person] = []


class District(_Strict):
    id: str
    name: str
    areas: dict[str, Area]
    cameras: dict[str, Camera]
    people: dict[str, Person]
    _micro_shapes: list[tuple[str, PreparedGeometry]] = PrivateAttr(default_factory=list)

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
            if p.role == "worker" and (p.micro_grid is None or p.post is None):
                raise ValueError(f"worker {p.id!r} needs micro_grid and post (A or B)")
        return self

    def model_post_init(self, _context: Any) -> None:
        self._micro_shapes = [
            (a.id, prep(shape(a.geometry))) for a in self.areas.values() if a.level == "micro_grid"
        ]

    def micro_grid_of(self, camera_id: str) -> str | None:
        """The micro-grid a camera belongs to: its override, else the polygon holding it."""
        cam = self.cameras.get(camera_id)
        if cam is None:
            return None
        if cam.micro_grid is not None:
            return cam.micro_grid
        pt = Point(cam.lon, cam.lat)
        for aid, prepared in self._micro_shapes:
            if prepared.covers(pt):
                return aid
        return None

    def owner_of(self, micro_grid_id: str | None) -> Person | None:
        """Who gets a case in a micro-grid: the A post, else the B post, else its leader."""
        if micro_grid_id is None:
            return None
        here = [p for p in self.people.values() if p.micro_grid == micro_grid_id]
        for role, post in (("worker", "A"), ("worker", "B"), ("micro_grid_leader", None)):
            for p in here:
                if p.role == role and p.post == post:
                    return p
        return None

    def feature_collection(self) -> dict[str, Any]:
        """The areas as GeoJSON, for the wall-screen map."""
        return {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": a.geometry,
                 "properties": {"id": a.id, "name": a.name, "level": a.level,
                                "parent": a.parent}}
                for a in self.areas.values()
            ],
        }


def _where(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
    )


def load_district(path: Path) -> District:
    """Read and validate a district; every failure is a DistrictError naming file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DistrictError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise DistrictError(f"{path}: not valid YAML: {exc}") from None
    try:
        spec = DistrictFile.model_validate(raw)
    except ValidationError as exc:
        raise DistrictError(f"{path}: {_where(exc)}") from None
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
            except (ValidationError, ValueError, TypeError, KeyError) as exc:
                detail = _where(exc) if isinstance(exc, ValidationError) else str(exc)
                raise DistrictError(f"{gpath}: features[{i}]: {detail}") from None
            areas[area.id] = area
    except OSError as exc:
        raise DistrictError(f"{path}: grids: cannot read {gpath}: {exc.strerror}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DistrictError(f"{gpath}: not a GeoJSON FeatureCollection: {exc}") from None
    try:
        return District(
            id=spec.id, name=spec.name, areas=areas,
            cameras={c.id: c for c in spec.cameras}, people={p.id: p for p in spec.people},
        )
    except ValidationError as exc:
        raise DistrictError(f"{path}: {_where(exc)}") from None

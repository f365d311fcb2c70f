"""Edge worker configuration: one YAML file per edge box, validated before anything starts.

Every model forbids unknown keys, so a misspelt ``dwel_s`` fails at startup with the file, the
key path and the reason, instead of silently falling back to a default at 3 a.m.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from center.protocol import EventCode, Ident

#: The detector's output vocabulary after class mapping (see models/registry.yaml).
OUR_CLASSES = frozenset({"two_wheeler", "person", "vending_cue", "car"})


class ConfigError(Exception):
    """A configuration problem, phrased for the person editing the YAML file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)


class DetectorConfig(_Strict):
    model: str = "nanodet-m-416-coco"
    score_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    threads: int = Field(default=1, ge=1, le=64)


class ZoneConfig(_Strict):
    """A polygon in normalised image coordinates, so it survives a change of stream resolution."""

    id: Ident
    polygon: list[tuple[float, float]] = Field(min_length=3)
    event_type: EventCode
    classes: list[str] = Field(min_length=1)
    dwell_s: float = Field(default=30.0, gt=0.0)
    clear_s: float = Field(default=10.0, gt=0.0)
    min_score: float = Field(default=0.3, ge=0.0, le=1.0)

    @field_validator("polygon")
    @classmethod
    def _normalised(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for x, y in value:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"point [{x}, {y}] is outside 0..1 (use normalised coordinates)")
        return value

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - OUR_CLASSES)
        if unknown:
            raise ValueError(f"unknown classes {unknown}; choose from {sorted(OUR_CLASSES)}")
        return value


class CameraConfig(_Strict):
    id: Ident
    name: str = ""
    #: File path, rtsp:// or http(s):// URL, or a device index such as "0". A still image is a
    #: valid source: it behaves like a frozen camera, which is handy for demos and tests.
    source: str = Field(min_length=1)
    loop: bool = True
    sample_fps: float = Field(default=1.0, ge=0.1, le=30.0)
    zones: list[ZoneConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_zone_ids(self) -> CameraConfig:
        _reject_duplicates([z.id for z in self.zones], "zone id")
        return self

    @property
    def is_file(self) -> bool:
        return not (self.source.isdigit() or re.match(r"^[a-z][a-z0-9+.-]*://", self.source))


class EdgeConfig(_Strict):
    edge_id: Ident
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    heartbeat_s: float = Field(default=10.0, gt=0.0)
    cameras: list[CameraConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> EdgeConfig:
        _reject_duplicates([c.id for c in self.cameras], "camera id")
        return self


def _reject_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ValueError(f"duplicate {what} {ident!r}")
        seen.add(ident)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate an edge YAML file; relative file sources are taken from its folder,
    so a config and its media can move together."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{path}: {_key_path(err['loc'])}: {err['msg']}"
            + ("" if err["type"] == "missing" else f" (got {_short(err['input'])})")
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError("\n".join(lines)) from None
    for camera in config.cameras:
        if camera.is_file and not Path(camera.source).is_absolute():
            camera.source = str((path.parent / camera.source).resolve())
    return config

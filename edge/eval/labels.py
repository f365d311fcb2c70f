"""The labelled-footage format ``gridwatch-eval/1`` (docs/detection.md): what a camera saw, how
the edge is set up for it, and what it should have said.

A set is one YAML file (or a folder holding ``set.yaml``). Each case is one camera: a clip or
a still (a still runs as a frozen camera for ``camera.duration_s``), its zones and rules
exactly as in an edge config (``edge.config.CameraConfig``, validated by it), ground truth as
violation intervals (zone, event type, start, end, in seconds of stream time) and
must-stay-quiet intervals, and optionally labelled boxes for the detector's own figures.
Media are referenced, never copied: ``shared:<path>`` is a file of the shared folder beside
the checkout (``wire.paths.shared_file``), other relative paths are taken from the set's
folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.capture import IMAGE_SUFFIXES
from edge.config import OUR_CLASSES, CameraConfig, ConfigError
from wire.errors import describe, problems, read_yaml
from wire.paths import shared_file
from wire.protocol import EventCode, Ident

FORMAT = "gridwatch-eval/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Interval(_Strict):
    """Seconds of stream time, ``start`` <= ``end``."""

    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)
    #: What the labeller saw, for the next person checking the label.
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Violation(Interval):
    """A violation the edge must report: a ``new`` alert of this zone and event type whose
    time falls in [start, end + the set's ``tolerance_s``]."""

    zone: Ident
    event_type: EventCode


class Quiet(Interval):
    """A stretch during which the zone (every zone when unset) must raise nothing."""

    zone: Ident | None = None


class BoxLabels(_Strict):
    """Labelled boxes of a still, for the detector's per-class recall and precision."""

    path: str
    #: ``yolo``: one ``class cx cy w h`` line per box, normalised; ``voc``: Pascal VOC XML.
    format: Literal["yolo", "voc"]
    #: Label (a YOLO class index or a VOC name) -> our class. Boxes of unlisted labels are
    #: neither required nor held against the detector (a detection on one is not a false one).
    classes: dict[str, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _our_classes(self) -> BoxLabels:
        unknown = sorted(set(self.classes.values()) - OUR_CLASSES)
        if unknown:
            raise ValueError(f"classes maps to unknown classes {unknown}; choose from "
                             f"{sorted(OUR_CLASSES)}")
        return self


class Case(_Strict):
    id: Ident
    description: str = ""
    #: The clip or still: ``shared:<path>`` or a path relative to the set file.
    media: str = Field(min_length=1)
    #: The camera as in an edge config, without ``id`` and ``source`` (the case gives them).
    #: Unset: the case has boxes only and the pipeline is not run.
    camera: dict[str, Any] | None = None
    violations: list[Violation] = Field(default_factory=list)
    quiet: list[Quiet] = Field(default_factory=list)
    boxes: BoxLabels | None = None
    #: Included in the quick set run by ``--quick`` (and the test suite's regression gate).
    quick: bool = False

    @model_validator(mode="after")
    def _checked(self) -> Case:
        if self.camera is None:
            if self.boxes is None:
                raise ValueError("a case needs camera (zones to run) or boxes (or both)")
            if self.violations or self.quiet:
                raise ValueError("violations and quiet need a camera to run")
            return self
        for key in ("id", "source"):
            if key in self.camera:
                raise ValueError(f"camera.{key} is given by the case; leave it out")
        camera = self.camera_config("x")
        still = Path(self.media).suffix.lower() in IMAGE_SUFFIXES
        if camera.duration_s is None and (camera.loop or still):
            raise ValueError("camera.duration_s: needed for a still (a frozen camera runs that "
                             "long) and for a clip with loop: true (it would never end)")
        zones = {z.id: {r.event_type for r in z.rules} for z in camera.zones}
        for i, v in enumerate(self.violations):
            if v.zone not in zones:
                raise ValueError(f"violations[{i}].zone {v.zone!r} is not a zone of the camera "
                                 f"({sorted(zones)})")
            if v.event_type not in zones[v.zone]:
                raise ValueError(f"violations[{i}].event_type {v.event_type} is raised by no "
                                 f"rule of zone {v.zone!r} ({sorted(zones[v.zone], key=str)})")
        for i, q in enumerate(self.quiet):
            if q.zone is not None and q.zone not in zones:
                raise ValueError(f"quiet[{i}].zone {q.zone!r} is not a zone of the camera "
                                 f"({sorted(zones)})")
            for j, v in enumerate(self.violations):
                if q.zone in (None, v.zone) and q.start < v.end and v.start < q.end:
                    raise ValueError(f"quiet[{i}] overlaps violations[{j}] in zone {v.zone!r}: "
                                     "a zone cannot be both quiet and in violation")
        return self

    def camera_config(self, source: str, overrides: dict[str, Any] | None = None
                      ) -> CameraConfig:
        """The case's camera as the edge validates it (errors name ``camera.<key>``); a case
        plays its clip once unless it says ``loop: true``."""
        assert self.camera is not None
        camera = deep_merge({"loop": False, **self.camera}, overrides or {})
        try:
            return CameraConfig.model_validate({**camera, "id": self.id, "source": source})
        except ValidationError as exc:
            raise ValueError(describe(exc, ("camera",), with_input=False)) from None


class EvalSet(_Strict):
    format: Literal["gridwatch-eval/1"]
    name: Ident
    description: str = ""
    #: Edge config keys every case runs with (``detector``, ``motion``); unset: the shipped
    #: defaults, which is what the set measures unless a command line overrides them.
    edge: dict[str, Any] = Field(default_factory=dict)
    #: Wall time of stream time 0 (schedules are read on it; default a Monday 10:00) and the
    #: zone schedules are read in.
    replay_start: AwareDatetime = datetime(2026, 3, 2, 10, tzinfo=timezone(timedelta(hours=8)))
    timezone: str = "Asia/Shanghai"
    #: An alert may come this long after its violation's ``end`` and still count for it.
    tolerance_s: float = Field(default=2.0, ge=0.0)
    #: IoU at which a detection counts as finding a labelled box.
    box_iou: float = Field(default=0.5, gt=0.0, le=1.0)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> EvalSet:
        seen: set[str] = set()
        for case in self.cases:
            if case.id in seen:
                raise ValueError(f"duplicate case id {case.id!r}")
            seen.add(case.id)
        for key in ("cameras", "edge_id", "replay_start", "timezone"):
            if key in self.edge:
                raise ValueError(f"edge.{key} is set by the evaluator; leave it out")
        return self


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keys over it, nested mappings merged key by key (an override
    of ``crops.mode`` keeps the case's other ``crops`` keys)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_set(path: str | Path) -> tuple[EvalSet, Path]:
    """Read and validate a set (a YAML file, or a folder with ``set.yaml``); returns it and
    the folder its relative media paths start from. Errors name the file and key path."""
    path = Path(path)
    if path.is_dir():
        path = path / "set.yaml"
    raw = read_yaml(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return EvalSet.model_validate(raw), path.parent
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{path}: {p.text}" for p in problems(exc))) from None


def media_path(ref: str, folder: Path) -> Path:
    """A case's media or label file: ``shared:<rel>`` from the shared folder, else relative to
    the set's folder; FileNotFoundError names what is missing."""
    if ref.startswith("shared:"):
        return shared_file(ref.removeprefix("shared:"))
    path = (folder / ref).resolve()
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    return path

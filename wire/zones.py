"""Zones and their rules: what an engineer draws on a camera's frame and the edge watches.

Both sides validate these models: the edge reads them from its YAML file and from pushes
(``edge.config``, ``edge.reconfig``), the center checks an engineer's edit and the zones the
edges report with the very same ones (``center.api.engineer``, ``center.services.edge_state``),
so an error names the key exactly as the edge would, and neither side imports the other.
What only the edge knows (sources, credentials, the detector, clips...) stays in
``edge.config``.

Every model forbids unknown keys, so a misspelt ``dwel_s`` fails with the key path and the
reason instead of silently falling back to a default at 3 a.m.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wire.fields import EventCode, Ident
from wire.vocabulary import OUR_CLASSES, RULE_CLASSES, RULE_DEFAULT_CLASSES, WEEKDAYS, RuleType


class Strict(BaseModel):
    """A config model: unknown keys are an error (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


#: Ambiguous classes get size bounds by default where a rule type reads them as something
#: else: in a shopfront, a COCO model calls a hand cart "truck" or "car"; a box the size and
#: shape of a cart (at most 3 % of the frame, not much wider than tall) is goods, a real
#: vehicle is not. Initial values, to be calibrated with ``gridwatch eval``.
RULE_CLASS_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "doorway_trading": {"car": {"max_area": 0.03, "max_aspect": 1.8}}}


class ClassRule(Strict):
    """Per-class overrides inside a rule; unset values fall back to the rule, then the zone."""

    dwell_s: float | None = Field(default=None, gt=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Box area as a fraction of the frame; filters far-away specks and frame-filling blobs.
    min_area: float = Field(default=0.0, ge=0.0, le=1.0)
    max_area: float = Field(default=1.0, gt=0.0, le=1.0)
    #: Box shape (width / height); tells a cart read as "truck" from a real truck.
    min_aspect: float = Field(default=0.0, ge=0.0)
    max_aspect: float = Field(default=100.0, gt=0.0)

    @model_validator(mode="after")
    def _area_order(self) -> ClassRule:
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area {self.min_area} must be below max_area {self.max_area}")
        if self.min_aspect >= self.max_aspect:
            raise ValueError(f"min_aspect {self.min_aspect} must be below max_aspect "
                             f"{self.max_aspect}")
        return self


class ShopfrontConfig(Strict):
    """Where a shop may use the pavement: goods standing within ``allowed_depth`` of the door
    line (on the street side) are the shop's own strip; only goods beyond it count."""

    #: Two normalised [x, y] points along the shop's front (its door line).
    door_line: tuple[tuple[float, float], tuple[float, float]]
    #: Depth of the allowed strip, as a fraction of the frame height (perpendicular distance
    #: from the door line to the ground point of a box, in pixels / frame height).
    allowed_depth: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("door_line")
    @classmethod
    def _line(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if any(not (0.0 <= v <= 1.0) for point in value for v in point):
            raise ValueError("door_line points must be normalised (0..1)")
        if value[0] == value[1]:
            raise ValueError("door_line needs two different points")
        return value


class ScheduleWindow(Strict):
    """When a rule is active, in the edge's ``timezone``. ``end`` before ``start`` is an
    overnight window: it starts on the listed day and ends the next morning."""

    days: list[str] = Field(default_factory=lambda: list[str](WEEKDAYS), min_length=1)
    start: str = "00:00"
    end: str = "24:00"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d.lower() not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown days {bad}; use {list(WEEKDAYS)}")
        return [d.lower() for d in value]

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> str:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 07:00 as the number 420
            value = f"{value // 60:02d}:{value % 60:02d}"
        text = str(value)
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
        if not m or int(m[1]) > 24 or int(m[2]) > 59 or (int(m[1]) == 24 and int(m[2])):
            raise ValueError(f"time {text!r} is not HH:MM (00:00..24:00)")
        return f"{int(m[1]):02d}:{m[2]}"

    def minutes(self) -> tuple[int, int]:
        def to_min(t: str) -> int:
            h, m = t.split(":")
            return int(h) * 60 + int(m)
        return to_min(self.start), to_min(self.end)


class RuleConfig(Strict):
    """One rule of a zone. ``illegal_parking`` (0506): a two-wheeler standing still in the zone
    for ``dwell_s``, nobody riding it. ``doorway_trading`` (0504): goods or a stall (vending
    cues, a cart) staying put beyond the shop's allowed strip, with people around them, at
    least ``min_objects`` objects of which at least one is goods, for ``dwell_s``."""

    type: RuleType
    #: Defaults to the type; must be unique within the zone.
    id: Ident | None = None
    #: Defaults from the type: illegal_parking 0506 (0505 when only cars are watched),
    #: doorway_trading 0504.
    event_type: EventCode | None = None
    #: A list of class names, or a mapping class -> per-class settings (dwell_s, min_score,
    #: min_area, max_area, min_aspect, max_aspect). Defaults: illegal_parking [two_wheeler];
    #: doorway_trading [vending_cue, person, car (cart-sized only)].
    classes: dict[str, ClassRule] | None = None
    dwell_s: float | None = Field(default=None, gt=0.0)
    clear_s: float | None = Field(default=None, gt=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Qualifying objects needed at once; default 1 (illegal_parking) / 2 (doorway_trading).
    min_objects: int | None = Field(default=None, ge=1, le=100)
    #: Empty: always active.
    schedule: list[ScheduleWindow] = Field(default_factory=list)
    #: doorway_trading only: the shop's door line and the strip it may use.
    shopfront: ShopfrontConfig | None = None

    @field_validator("classes", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {name: {} for name in value}
        return {k: ({} if v is None else v) for k, v in value.items()} if isinstance(
            value, dict) else value

    @model_validator(mode="after")
    def _fill(self) -> RuleConfig:
        if self.id is None:
            self.id = self.type
        if self.classes is None:
            self.classes = {name: ClassRule() for name in RULE_DEFAULT_CLASSES[self.type]}
        for name, bounds in RULE_CLASS_DEFAULTS.get(self.type, {}).items():
            rule = self.classes.get(name)
            if rule is not None:  # defaults only for the bounds the config leaves unset
                self.classes[name] = ClassRule.model_validate(
                    {**bounds, **rule.model_dump(exclude_unset=True)})
        if self.shopfront is not None and self.type != "doorway_trading":
            raise ValueError("shopfront is for doorway_trading rules only")
        allowed = RULE_CLASSES[self.type]
        bad = sorted(set(self.classes) - set(allowed))
        if bad or not self.classes:
            raise ValueError(f"classes {bad or '[]'} not usable by {self.type}; "
                             f"choose from {list(allowed)}")
        if self.event_type is None:
            self.event_type = ("0504" if self.type == "doorway_trading" else
                               "0505" if set(self.classes) == {"car"} else "0506")
        if self.min_objects is None:
            self.min_objects = 2 if self.type == "doorway_trading" else 1
        return self


class ZoneConfig(Strict):
    """A polygon in normalised image coordinates, so it survives a change of stream resolution.

    Two forms: ``rules: [...]`` (any number of rules, each with its own type, classes, dwell
    and schedule), or the original one-rule form with ``event_type`` and ``classes`` on the
    zone, which is read as one rule (0504 -> doorway_trading with min_objects 1, anything else
    -> illegal_parking). ``dwell_s``, ``clear_s`` and ``min_score`` on the zone are the
    defaults of its rules; ``min_score`` unset falls back to the model's per-class default
    (models/registry.yaml).
    """

    id: Ident
    polygon: list[tuple[float, float]] = Field(min_length=3)
    #: Frames an object must be seen in the zone before it counts (flicker filter).
    inertia: int = Field(default=3, ge=1, le=100)
    dwell_s: float = Field(default=30.0, gt=0.0)
    clear_s: float = Field(default=10.0, gt=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    rules: list[RuleConfig] = Field(default_factory=list)
    # The original one-rule form:
    event_type: EventCode | None = None
    classes: list[str] | None = Field(default=None, min_length=1)

    @field_validator("polygon")
    @classmethod
    def _normalised(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return normalised_points(value)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - OUR_CLASSES)
        if unknown:
            raise ValueError(f"unknown classes {unknown}; choose from {sorted(OUR_CLASSES)}")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> ZoneConfig:
        legacy = self.event_type is not None or self.classes is not None
        if self.rules and legacy:
            raise ValueError("give either rules: [...] or event_type + classes, not both")
        if not self.rules:
            if self.event_type is None or self.classes is None:
                raise ValueError("a zone needs rules: [...] (or event_type and classes)")
            kind: RuleType = "doorway_trading" if self.event_type == "0504" else "illegal_parking"
            bad = sorted(set(self.classes) - set(RULE_CLASSES[kind]))
            if bad:
                raise ValueError(f"classes {bad} cannot be used for event {self.event_type} "
                                 f"({kind}: {list(RULE_CLASSES[kind])})")
            self.rules = [RuleConfig(type=kind, event_type=self.event_type,
                                     classes={c: ClassRule() for c in self.classes},
                                     min_objects=1)]
            # Kept only in the rules form, so a dump (the config state the center sees, and
            # pushes back with edited zones) validates again.
            self.event_type = self.classes = None
        reject_duplicates([r.id or r.type for r in self.rules], "rule id")
        return self


class CameraZones(Strict):
    """A camera and its whole zone list: what a zone push carries per camera
    (``wire.protocol.ZonesPush``); the edge's ``CameraConfig`` adds the rest."""

    id: Ident
    zones: list[ZoneConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_zone_ids(self) -> CameraZones:
        reject_duplicates([z.id for z in self.zones], "zone id")
        return self


class ReportedCamera(CameraZones):
    """A camera of an edge's reported config (``wire.protocol.EdgeConfigState.config``) as the
    center reads it: its id and zones, checked like the edge's; the rest (source, sampling,
    clips...) is the edge's own and passes unread."""

    model_config = ConfigDict(extra="ignore")


class ReportedZones(BaseModel):
    """The zones of an edge's reported config, per camera: what the center stores, shows the
    engineers and pushes back edited (``center.services.edge_state``)."""

    model_config = ConfigDict(extra="ignore")

    cameras: list[ReportedCamera] = Field(default_factory=list)


def normalised_points(value: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``value``, if every point lies in 0..1 (a polygon in normalised image coordinates)."""
    for x, y in value:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point [{x}, {y}] is outside 0..1 (use normalised coordinates)")
    return value


def reject_duplicates(ids: list[str], what: str) -> None:
    """Raise ``ValueError`` naming the first id that repeats."""
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ValueError(f"duplicate {what} {ident!r}")
        seen.add(ident)

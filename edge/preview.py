"""``gridwatch edge preview CONFIG``: pictures of what the edge sees, to commission a camera.

Placing a zone and choosing its thresholds by guesswork is how a camera ends up never alerting
(the detector's boxes stand just outside the polygon, or score below ``min_score``) or alerting
on riders. For each camera this takes a few seconds of frames through the same code as
``edge run``: the capture thread (``edge.checks.sample_frames``), the detector as the runner
builds it, the motion tracker and the zone rules (``edge.runner.camera_rules``). It then draws
the last frame: the zones, every detection with its class and score, and what the rules made
of it, read from the rules' own state after that frame (``CameraRules.last``,
``ZoneRule.last_inside``, ``RuleState.last_candidates`` / ``last_sites``), never worked out
again here, so the picture cannot disagree with what the edge would do. A side panel says what
each colour means and how the zones' rules are set.

Output per camera: ``<camera_id>.png`` and ``<camera_id>.json`` (every detection of the last
frame with its flags and per-rule verdict, a per-frame summary, and any alert the rules raised
meanwhile). Frigate's debug view and DeepStream's on-screen display do the same job for their
pipelines: draw the live state, do not describe it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import cv2
from PIL import Image, ImageDraw, ImageFont

from edge.capture import Frame, redact
from edge.checks import SourceError, sample_frames
from edge.config import CameraConfig, EdgeConfig
from edge.rules import CameraRules, RuleState, schedule_active

log = logging.getLogger(__name__)

#: The picture's longest side: small frames are enlarged so labels stay readable beside the
#: objects, big ones reduced to a size a laptop screen shows whole.
MIN_SIDE, MAX_SIDE = 960, 1600
PANEL_W = 380
PANEL_MIN_H = 760
#: The zones' region is shown enlarged below the frame when it covers at most this share of
#: the frame and enlarging gains at least ZOOM_MIN_GAIN; at most ZOOM_MAX_H px tall and
#: ZOOM_MAX_SCALE x the frame's pixels (beyond that it only shows blur bigger).
ZOOM_MAX_AREA, ZOOM_MIN_GAIN, ZOOM_MAX_H, ZOOM_MAX_SCALE = 0.35, 1.4, 600, 4.0
ZOOM_HEAD = 0.3
#: Fonts tried in order: Noto Sans CJK first, for Chinese camera and zone names (Debian's
#: fonts-noto-cjk, which .ci/setup.sh installs), then DejaVu (fonts-dejavu-core).
FONT_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
              "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
ZONE_RGB = (255, 200, 0)  # the evidence pictures' amber (edge.evidence.ZONE_COLOUR)
EXCLUDE_RGB = (150, 150, 150)

#: What the rules made of a detection, most telling first (a detection in two zones shows the
#: first that applies), with its colour and the panel's explanation.
STATUSES: dict[str, tuple[tuple[int, int, int], str]] = {
    "qualifying": ((235, 40, 40), "qualifies: counts toward an alert"),
    "dwelling": ((255, 140, 0), "standing still, building dwell (seen/needed)"),
    "duplicate": ((255, 190, 120), "second box on an object already counted"),
    "weak": ((255, 110, 200), "in a site, but scores below min_score"),
    "moving": ((60, 150, 255), "moving (tracker): never builds dwell"),
    "excluded": ((150, 150, 150), "in an exclude polygon"),
    "off-schedule": ((150, 150, 150), "rule outside its schedule"),
    "below-threshold": ((170, 170, 170), "below the rule's min_score"),
    "filtered": ((190, 160, 220), "size, shape or shop strip filter"),
    "not-watched": ((230, 230, 230), "class not watched by this zone's rules"),
    "outside": ((255, 255, 255), "outside every zone"),
}
RIDDEN_RGB = (200, 90, 255)


@dataclass
class RuleVerdict:
    zone: str
    rule: str
    status: str
    detail: str = ""


@dataclass
class DetectionView:
    label: str
    score: float
    box: list[float]
    moving: bool | None
    ridden: bool
    excluded: bool
    verdicts: list[RuleVerdict] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.verdicts:
            return "outside"
        order = list(STATUSES)
        return min((v.status for v in self.verdicts), key=order.index)

    @property
    def detail(self) -> str:
        return next((v.detail for v in self.verdicts if v.status == self.status and v.detail),
                    "")


@dataclass
class CameraPreview:
    camera: CameraConfig
    rules: CameraRules
    frames: int = 0
    first_ts: float | None = None
    last: Frame | None = None
    detections: list[DetectionView] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    png: Path | None = None
    json: Path | None = None


# --- reading the rules' state -----------------------------------------------------------------

def _rule_verdict(state: RuleState, rules: CameraRules, i: int, frame: Frame) -> RuleVerdict:
    """One rule's view of detection ``i``, from what that rule recorded for the last frame."""
    last = rules.last
    assert last is not None
    label, score = last.dets.labels[i], float(last.dets.scores[i])
    verdict = RuleVerdict(state.zone.id, state.rule.id or state.rule.type, "")
    floor = state.min_score.get(label)
    site = state.last_sites.get(i)
    if site is not None:
        dwell = state.dwell.get(site.label, 0.0)
        seen = f"{site.last_seen - site.first_seen:.0f}/{dwell:.0f} s"
        if site.qualified:
            verdict.status, verdict.detail = "qualifying", seen
        elif floor is not None and score < floor:
            verdict.status, verdict.detail = "weak", f"< {floor:.2f}"
        else:
            verdict.status, verdict.detail = "dwelling", seen
    elif i in state.last_candidates:
        verdict.status = "duplicate"
    elif last.moving is not None and last.moving[i]:
        verdict.status = "moving"
    elif last.excluded is not None and last.excluded[i]:
        verdict.status = "excluded"
    elif floor is None:
        verdict.status = "not-watched"
    elif not schedule_active(state.rule.schedule, frame.wall, state.tz):
        verdict.status = "off-schedule"
    elif score < floor:
        verdict.status, verdict.detail = "below-threshold", f"< {floor:.2f}"
    else:
        verdict.status = "filtered"
    return verdict


def read_state(rules: CameraRules, frame: Frame) -> list[DetectionView]:
    """Every detection of the frame just given to ``rules.update`` and what its rules made
    of it."""
    last = rules.last
    if last is None:
        return []
    views = []
    for i in range(len(last.dets)):
        view = DetectionView(
            last.dets.labels[i], round(float(last.dets.scores[i]), 4),
            [round(float(v), 1) for v in last.dets.xyxy[i]],
            None if last.moving is None else bool(last.moving[i]), bool(last.ridden[i]),
            bool(last.excluded is not None and last.excluded[i]))
        for zone in rules.zones:
            if i < len(zone.last_inside) and zone.last_inside[i]:
                view.verdicts += [_rule_verdict(s, rules, i, frame) for s in zone.rules]
        views.append(view)
    return views


# --- running ----------------------------------------------------------------------------------

def preview_camera(config: EdgeConfig, camera: CameraConfig, detect: Any,
                   rules: CameraRules, *, frames: int | None, seconds: float) -> CameraPreview:
    """Feed the camera's frames through ``detect`` and ``rules`` and keep the last view."""
    result = CameraPreview(camera, rules)
    try:
        for sampled in sample_frames(camera, frames=frames, seconds=seconds):
            frame = sampled
            if config.replay_start is not None and camera.is_file:  # as edge.runner does
                frame = replace(frame, wall=config.replay_start + timedelta(seconds=frame.ts))
            events = rules.update(frame, detect(camera, frame))
            views = read_state(rules, frame)
            result.frames += 1
            result.first_ts = frame.ts if result.first_ts is None else result.first_ts
            result.last, result.detections = frame, views
            statuses: dict[str, int] = {}
            for view in views:
                statuses[view.status] = statuses.get(view.status, 0) + 1
            result.history.append({"ts": round(frame.ts, 3), "detections": len(views),
                                   "statuses": statuses})
            result.events += [{"ts": round(frame.ts, 3), "kind": e.kind, "zone": e.zone.id,
                               "rule": e.rule.id, "event_type": e.event_type,
                               "label": e.violation.label, "count": e.violation.count,
                               "score": round(e.violation.score, 4)} for e in events]
    except SourceError as exc:
        result.error = str(exc)
    return result


def preview(config: EdgeConfig, out_dir: Path, *, frames: int | None = None,
            seconds: float = 5.0, cameras: tuple[str, ...] = ()) -> list[CameraPreview]:
    """Preview every camera (or those named in ``cameras``) one after the other, with one
    detector built as ``edge run`` builds it; writes the pictures and JSON into ``out_dir``.
    Raises what loading the detector raises (missing weights, unknown model)."""
    from edge.detect import load_from_config
    from edge.detect.pool import InlineDetector
    from edge.runner import _submit, camera_rules, detector_settings

    detector = InlineDetector(load_from_config(detector_settings(config)))

    def detect(camera: CameraConfig, frame: Frame) -> Any:
        return _submit(detector, camera, frame).result()

    results = []
    for camera in config.cameras:
        if cameras and camera.id not in cameras:
            continue
        result = preview_camera(config, camera, detect, camera_rules(config, camera),
                                frames=frames, seconds=seconds)
        write_outputs(config, result, out_dir)
        results.append(result)
    return results


def write_outputs(config: EdgeConfig, result: CameraPreview, out_dir: Path) -> None:
    """``<camera_id>.json`` always (it carries the error when there was no frame), and
    ``<camera_id>.png`` when there was one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    camera = result.camera
    doc: dict[str, Any] = {
        "camera_id": camera.id, "name": camera.name, "source": redact(camera.source),
        "model": config.detector.model, "frames": result.frames, "error": result.error,
    }
    if result.last is not None:
        height, width = result.last.image.shape[:2]
        result.png = out_dir / f"{camera.id}.png"
        render(config, result).save(result.png)
        doc.update({
            "image": result.png.name, "frame_size": [width, height],
            "ts": round(result.last.ts, 3),
            "stream_s": round(result.last.ts - (result.first_ts or 0.0), 3),
            "zones": [{"id": z.id, "polygon": z.polygon,
                       "rules": [r.model_dump(mode="json", exclude_none=True)
                                 for r in z.rules]} for z in camera.zones],
            "detections": [_view_json(v) for v in result.detections],
            "history": result.history, "events": result.events,
        })
    result.json = out_dir / f"{camera.id}.json"
    result.json.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def _view_json(view: DetectionView) -> dict[str, Any]:
    return {"label": view.label, "score": view.score, "box": view.box, "status": view.status,
            "moving": view.moving, "ridden": view.ridden, "excluded": view.excluded,
            "rules": [v.__dict__ for v in view.verdicts]}


# --- drawing ----------------------------------------------------------------------------------

@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font that has Chinese where one is installed (Noto Sans CJK's Simplified Chinese face
    of the collection), else DejaVu, else matplotlib's DejaVu (ultralytics brings it)."""
    from edge.detect.ultralytics_yolo import any_ttf

    for path in (*FONT_FILES, any_ttf()):
        if path is None or not Path(path).is_file():
            continue
        faces = range(10) if str(path).endswith(".ttc") else range(1)
        loaded = None
        for index in faces:
            try:
                face = ImageFont.truetype(str(path), size, index=index)
            except OSError:
                break
            loaded = loaded or face
            if "SC" in " ".join(name or "" for name in face.getname()):
                return face
        if loaded is not None:
            return loaded
    return ImageFont.load_default(size)


def _scale(width: int, height: int) -> float:
    side = max(width, height)
    return min(max(side, MIN_SIDE), MAX_SIDE) / side


def render(config: EdgeConfig, result: CameraPreview) -> Image.Image:
    """The last frame with zones, exclusions and every detection drawn, the panel beside it,
    and below it, when the zones cover a small part of the frame (a far pavement), the zones'
    region enlarged with the same boxes and their numbers.

    Boxes are drawn least telling first, so a qualifying box is never hidden under a faint
    one; labels are placed most telling first, each where it overlaps no earlier label
    (above the box, below it, or inside its top). Boxes outside every zone get a thin outline
    and no label: the rules never see them. Every other detection is numbered; one whose
    label found no free place gets just its number on the box and its label in the panel.
    """
    assert result.last is not None
    image = result.last.image
    height, width = image.shape[:2]
    k = _scale(width, height)
    size = max(14, round(max(width, height) * k / 72))
    order = list(STATUSES)
    views = sorted(result.detections, key=lambda v: (order.index(v.status), -v.score))
    numbered = list(enumerate((v for v in views if v.status != "outside"), 1))
    main, tagged = _layer(result, (0, 0, width, height), k, views, numbered, size, labels=True)
    pictures = [main]
    zoom = _zoom_rect(result.camera, width, height, k)
    if zoom is not None:
        rect, kz = zoom
        pictures.append(_layer(result, rect, kz, views, numbered, size, labels=False)[0])
    w = main.width
    canvas = Image.new("RGB", (w + PANEL_W, max(sum(p.height for p in pictures), PANEL_MIN_H)),
                       (24, 24, 28))
    y = 0
    for picture in pictures:
        canvas.paste(picture, (0, y))
        y += picture.height
    _draw_panel(ImageDraw.Draw(canvas), config, result, w, tagged)
    return canvas


def _zoom_rect(camera: CameraConfig, width: int, height: int,
               k: float) -> tuple[tuple[int, int, int, int], float] | None:
    """The zones' region (raised by ``ZOOM_HEAD`` of its height: objects stand on a zone and
    rise above it) and its scale, when that region is small enough to gain from enlarging."""
    points = [p for z in camera.zones for p in z.polygon]
    if not points:
        return None
    xs, ys = [x * width for x, _ in points], [y * height for _, y in points]
    pad = (max(ys) - min(ys)) * ZOOM_HEAD
    x0, x1 = max(0, int(min(xs) - pad / 4)), min(width, int(max(xs) + pad / 4) + 1)
    y0, y1 = max(0, int(min(ys) - pad)), min(height, int(max(ys) + pad / 4) + 1)
    if x1 - x0 < 8 or y1 - y0 < 8 or (x1 - x0) * (y1 - y0) > ZOOM_MAX_AREA * width * height:
        return None
    kz = min(width * k / (x1 - x0), ZOOM_MAX_H / (y1 - y0), ZOOM_MAX_SCALE)
    return ((x0, y0, x1, y1), kz) if kz >= ZOOM_MIN_GAIN * k else None


@dataclass(frozen=True)
class _Window:
    """Where a frame region is drawn: frame pixels -> picture pixels."""

    x0: float
    y0: float
    k: float
    size: tuple[int, int]

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.k, (y - self.y0) * self.k

    def box(self, box: list[float]) -> Rect:
        return (*self.at(box[0], box[1]), *self.at(box[2], box[3]))


def _layer(result: CameraPreview, rect: tuple[int, int, int, int], k: float,
           views: list[DetectionView], numbered: list[tuple[int, DetectionView]], size: int,
           *, labels: bool) -> tuple[Image.Image, list[tuple[int, DetectionView]]]:
    """One picture of ``rect`` of the frame at scale ``k`` with everything drawn; returns it
    and the numbered detections whose label found no room (only with ``labels``)."""
    assert result.last is not None
    x0, y0, x1, y1 = rect
    w, h = round((x1 - x0) * k), round((y1 - y0) * k)
    part = cv2.resize(result.last.image[y0:y1, x0:x1], (w, h),
                      interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    base = Image.fromarray(cv2.cvtColor(part, cv2.COLOR_BGR2RGB)).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    window = _Window(x0, y0, k, (w, h))
    height, width = result.last.image.shape[:2]
    placed = _draw_zones(draw, result.camera, window, size, (width, height))
    for view in reversed(views):
        _draw_box(draw, view, window)
    tagged = []
    for number, view in numbered:
        if labels and _label(draw, view, number, window, size, placed):
            continue
        if view.status == "not-watched":
            continue  # its box colour says enough
        x, y, _, _ = window.box(view.box)
        colour = STATUSES[view.status][0]
        placed.append(_plate(draw, (x + 2, y + 2), str(number), size - 3, colour, (w, h)))
        tagged.append((number, view))
    return Image.alpha_composite(base, overlay).convert("RGB"), tagged


Rect = tuple[float, float, float, float]


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _plate(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int,
           fill: tuple[int, int, int], frame: tuple[int, int], *, measure: bool = False) -> Rect:
    """Text on a dark plate at ``xy``, kept inside the picture; returns the plate's rect
    (only measured, not drawn, with ``measure``)."""
    f = font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=f)
    tw, th = right - left + 6, bottom - top + 4
    x = min(max(xy[0], 0), max(frame[0] - tw, 0))
    y = min(max(xy[1], 0), max(frame[1] - th, 0))
    if not measure:
        draw.rectangle((x, y, x + tw, y + th), fill=(0, 0, 0, 175))
        draw.text((x + 3 - left, y + 2 - top), text, font=f, fill=(*fill, 255))
    return (x, y, x + tw, y + th)


def _draw_zones(draw: ImageDraw.ImageDraw, camera: CameraConfig, window: _Window, size: int,
                frame: tuple[int, int]) -> list[Rect]:
    """Exclusions in grey, zones in amber with their ids; returns the id plates' rects."""
    width, height = frame
    placed = []
    for polygon in camera.exclude:
        points = [window.at(x * width, y * height) for x, y in polygon]
        draw.polygon(points, fill=(*EXCLUDE_RGB, 60), outline=(*EXCLUDE_RGB, 255), width=2)
        placed.append(_plate(draw, points[0], "excluded", size, EXCLUDE_RGB, window.size))
    for zone in camera.zones:
        points = [window.at(x * width, y * height) for x, y in zone.polygon]
        draw.polygon(points, fill=(*ZONE_RGB, 40), outline=(*ZONE_RGB, 255), width=3)
        for rule in zone.rules:
            if rule.shopfront is not None:
                line = [window.at(x * width, y * height) for x, y in rule.shopfront.door_line]
                draw.line(line, fill=(*ZONE_RGB, 255), width=3)
        top = min(points, key=lambda p: (p[1], p[0]))
        placed.append(_plate(draw, (top[0], top[1] - size - 8), f"zone {zone.id}", size,
                             ZONE_RGB, window.size))
    return placed


def _draw_box(draw: ImageDraw.ImageDraw, view: DetectionView, window: _Window) -> None:
    colour = STATUSES[view.status][0]
    x1, y1, x2, y2 = window.box(view.box)
    if view.status == "outside":
        draw.rectangle((x1, y1, x2, y2), outline=(*colour, 110), width=1)
        return
    thick = 3 if view.status in ("qualifying", "dwelling", "weak") else 2
    draw.rectangle((x1, y1, x2, y2), outline=(*colour, 255), width=thick)
    if view.ridden:  # a second, inner outline: ridden is a flag on top of the status
        draw.rectangle((x1 + 3, y1 + 3, max(x1 + 3, x2 - 3), max(y1 + 3, y2 - 3)),
                       outline=(*RIDDEN_RGB, 255), width=2)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def describe(view: DetectionView) -> str:
    """One detection in words: class, score, status (with its detail) and the ridden flag."""
    words = [f"{view.label} {view.score:.2f}", view.status]
    if view.detail:
        words[-1] += f" {view.detail}"
    if view.ridden:
        words.append("ridden")
    return " · ".join(words)


def _label(draw: ImageDraw.ImageDraw, view: DetectionView, number: int, window: _Window,
           size: int, placed: list[Rect]) -> bool:
    """The full label where it overlaps no earlier one; False when it found no room."""
    x1, y1, _, y2 = window.box(view.box)
    text = f"{number} {describe(view)}"
    colour = STATUSES[view.status][0]
    for spot in [(x1, y1 - size - 6), (x1, y2 + 2), (x1 + 2, y1 + 2)]:
        rect = _plate(draw, spot, text, size, colour, window.size, measure=True)
        if not any(_overlaps(rect, other) for other in placed):
            placed.append(_plate(draw, spot, text, size, colour, window.size))
            return True
    return False


def _wrap(draw: ImageDraw.ImageDraw, text: str, f: Any, width: float) -> list[str]:
    lines, current = [], ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=f) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


def _draw_panel(draw: ImageDraw.ImageDraw, config: EdgeConfig, result: CameraPreview,
                x0: int, tagged: list[tuple[int, DetectionView]]) -> None:
    """Who, when and with what; the colour key with this frame's counts; each zone's rules
    with the score floor and dwell the rules resolved for each class; then the labels that
    found no room on the picture, as far as the panel goes."""
    camera = result.camera
    assert result.last is not None
    small_px = 13
    big, normal, small = font(18), font(15), font(small_px)
    y = 12.0
    inner = PANEL_W - 24

    def line(text: str, colour: tuple[int, int, int], f: Any, indent: int = 0) -> None:
        nonlocal y
        for part in _wrap(draw, text, f, inner - indent):
            draw.text((x0 + 12 + indent, y), part, font=f, fill=colour)
            y += f.size + 5

    def swatch(colour: tuple[int, int, int]) -> None:
        draw.rectangle((x0 + 12, y + 3, x0 + 26, y + 17), outline=colour, width=3)

    line(camera.id, (255, 255, 255), big)
    if camera.name:
        line(camera.name, (235, 235, 235), normal)
    span = result.last.ts - (result.first_ts or 0.0)
    line(f"{plural(result.frames, 'frame')} over {span:.1f} s at {camera.sample_fps:g} fps; "
         f"this is the last", (200, 200, 200), small)
    line(f"model {config.detector.model}", (200, 200, 200), small)
    y += 8
    counts: dict[str, int] = {}
    for view in result.detections:
        counts[view.status] = counts.get(view.status, 0) + 1
    for status, (colour, meaning) in STATUSES.items():
        swatch(colour)
        line(f"{status} ({counts.get(status, 0)}): {meaning}", colour, small, indent=22)
    swatch(RIDDEN_RGB)
    line(f"ridden ({sum(v.ridden for v in result.detections)}): someone on it (inner "
         f"outline)", RIDDEN_RGB, small, indent=22)
    y += 8
    for zone in result.rules.zones:
        line(f"zone {zone.zone.id}", ZONE_RGB, normal)
        for state in zone.rules:
            scores = ", ".join(f"{c} ≥ {v:.2f} for {state.dwell[c]:g} s"
                               for c, v in state.min_score.items())
            line(f"{state.rule.type} {state.rule.event_type}: {scores}", (220, 220, 220),
                 small, indent=10)
    if result.events:
        y += 8
        kinds = ", ".join(f"{e['kind']} {e['event_type']} {e['zone']}" for e in result.events)
        line(f"alerts during the preview: {kinds}", STATUSES["qualifying"][0], small)
    y += 8
    bottom = draw.im.size[1] - 2 * (small_px + 5)
    for shown, (number, view) in enumerate(tagged):
        if y > bottom:
            line(f"... {len(tagged) - shown} more in {result.camera.id}.json", (200, 200, 200),
                 small)
            break
        line(f"{number} {describe(view)}", STATUSES[view.status][0], small)

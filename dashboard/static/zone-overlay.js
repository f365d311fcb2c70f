// A camera's zones and an alert's boxes laid over its picture or video, read-only: an
// <svg viewBox="0 0 1 1"> stretched over the media, in the coordinates the edge uses (fractions
// of the frame, zone polygons as in the edge's ZoneConfig, bbox as x1, y1, x2, y2). The media's
// box must have the frame's aspect (wall.css sizes the stage from the picture's own size), or
// the shapes would not sit on what they mark.
const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (SVG needs its namespace; dom.js's h() makes HTML). */
export function svgEl(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  return el;
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));

/** A normalised [x1, y1, x2, y2] box, or null when it is not one. */
export function normBox(box) {
  if (!Array.isArray(box) || box.length !== 4) return null;
  const n = box.map(Number);
  return n.every(Number.isFinite) ? n.map(clamp01) : null;
}

/**
 * The overlay: every zone of the camera (`zones`: [{id, polygon}]), the alert's zone
 * (`zoneId`) drawn as the one that fired, and `boxes` (normalised boxes) as the objects.
 */
export function zoneOverlay({ zones = [], zoneId = null, boxes = [] } = {}) {
  const svg = svgEl("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none", class: "zone-overlay", "aria-hidden": "true" });
  for (const zone of zones) {
    const points = (zone.polygon || []).filter((p) => Array.isArray(p) && p.length === 2).map(([x, y]) => `${clamp01(x)},${clamp01(y)}`);
    if (points.length < 3) continue;
    const fired = zoneId !== null && zone.id === zoneId;
    svg.append(svgEl("polygon", { points: points.join(" "), class: `overlay-zone${fired ? " is-alert" : ""}`, "data-zone-id": zone.id }));
  }
  for (const box of boxes.map(normBox).filter(Boolean)) {
    const [x1, y1, x2, y2] = box;
    svg.append(svgEl("rect", { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1), class: "overlay-box" }));
  }
  return svg;
}

/**
 * Size a stage (the box holding the media and its overlay) to the media's own aspect once it
 * knows it: a 4:3 camera's zones then sit right in a 16:9 tile too.
 */
export function fitStage(stage, media) {
  const set = (w, h) => {
    if (w > 0 && h > 0) stage.style.setProperty("--ar", String(w / h));
  };
  if (media instanceof HTMLVideoElement) {
    media.addEventListener("loadedmetadata", () => set(media.videoWidth, media.videoHeight));
  } else {
    media.addEventListener("load", () => set(media.naturalWidth, media.naturalHeight));
    if (media.complete) set(media.naturalWidth, media.naturalHeight);
  }
}

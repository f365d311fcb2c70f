// The wall map's label rule (docs/map.md, issue 15): a label is drawn only where it overlaps
// nothing drawn before it, in priority order: the grids' names, the micro-grids' names, then
// what sits on the map (case pins, camera dots and clusters, workers), then the base's place
// names, then its road names. Names of the base show from the district zoom on (zoomed out
// they are a blur). A label left out is hidden (visibility), not removed: zooming in, where
// there is room again, draws it.

/** [selector, is a label (hideable) or an obstacle] in priority order. */
const ORDER = [
  [".area-label-grid", true],
  [".area-label-micro_grid", true],
  [".case-pin, path.cam-marker, .cam-cluster span, .worker-marker", false],
  [".base-label-poi", true],
  [".base-label-road", true],
];
const BASE = /base-label/;
const MARGIN_PX = 2; // labels that only touch still read as one: keep a hair apart

const overlaps = (a, b) =>
  a.left < b.right + MARGIN_PX && b.left < a.right + MARGIN_PX && a.top < b.bottom + MARGIN_PX && b.top < a.bottom + MARGIN_PX;

/**
 * Hide the labels in `container` that would overlap a label or marker of higher priority;
 * `baseNames`: whether the base's names show at this zoom. Returns how many labels it hid.
 */
export function declutter(container, { baseNames = true } = {}) {
  const drawn = [];
  let hidden = 0;
  for (const [selector, label] of ORDER) {
    for (const el of container.querySelectorAll(selector)) {
      const box = el.getBoundingClientRect();
      if (!box.width && !box.height) continue; // not laid out (its layer is off the map)
      if (!label) {
        drawn.push(box);
        continue;
      }
      const why = !baseNames && BASE.test(el.className) ? "zoom" : drawn.some((d) => overlaps(box, d)) ? "overlap" : "";
      const show = !why;
      el.style.visibility = show ? "" : "hidden";
      el.dataset.hiddenBy = why;
      if (show) drawn.push(box);
      else hidden += 1;
    }
  }
  container.dataset.labelsHidden = String(hidden);
  return hidden;
}

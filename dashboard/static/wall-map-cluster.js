// Screen-space grouping for the wall map's clusters (cameras in wall-map.js, cases in
// wall-map-cases.js): one rule for both, so a camera cluster and a case cluster split at the
// same zoom. A module of its own so that the layers need not import the map that builds them.

/** Root font size in px: everything on the wall scales with it (1 rem = 16 px at 1920×1080). */
export const rem = () => parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;

/**
 * Group `items` whose points fall in the same `cellPx` square of the map's layer plane (the
 * plane moves with the zoom, so groups regroup at every zoom). `latLngOf(item)` places an item.
 * Returns arrays of items, one per occupied cell.
 */
export function groupByCell(map, items, cellPx, latLngOf) {
  const cells = new Map();
  for (const item of items) {
    const p = map.latLngToLayerPoint(latLngOf(item));
    const key = `${Math.floor(p.x / cellPx)}:${Math.floor(p.y / cellPx)}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(item);
  }
  return [...cells.values()];
}

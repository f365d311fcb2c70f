// What the wall map draws under the district's areas (docs/map.md): tiles from the tile source
// the center's settings name (GET /api/v1/map; none by default: walls often run offline) and
// the deployment's GeoJSON layers (roads, buildings, POIs), so the offline map reads as a town.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { GCJ02_CRS } from "./gcj02.js";
import { h } from "./dom.js";
import { API, getJSON } from "./http.js";

export const BASE_COLORS = { road: "#64748b", building: "#334155", poi: "#cbd5e1" };

/**
 * Load the map configuration and draw the base under `map`; tiles once `fitted` resolves. Returns {tiles, layers}: the
 * tile layer (or null) and the GeoJSON layers by name. A layer that fails to load is skipped
 * (the error goes to `onError`); the others still draw.
 */
export async function loadBase(map, { onCrs, onError, fitted } = {}) {
  const config = await getJSON(`${API}/map`);
  if (config.datum === "gcj02") onCrs?.(GCJ02_CRS);
  let tiles = null;
  if (config.tiles) {
    await fitted; // not the whole world's tiles at the placeholder view first
    const { url, subdomains, attribution, max_zoom: maxZoom } = config.tiles;
    tiles = L.tileLayer(url, { subdomains: subdomains || "abc", attribution, maxZoom, className: "map-tiles" });
    tiles.addTo(map);
    if (attribution) L.control.attribution({ prefix: false, position: "bottomright" }).addTo(map).addAttribution(attribution);
  }
  if (!map.getPane("base")) {
    const pane = map.createPane("base");
    pane.style.zIndex = 350; // above the tiles (200), below the areas (overlayPane, 400)
    pane.style.pointerEvents = "none";
  }
  const layers = new Map();
  for (const { name, url } of config.layers ?? []) {
    try {
      const data = await getJSON(url);
      layers.set(name, geojsonLayer(data, name).addTo(map));
    } catch (err) {
      onError?.(err, name);
    }
  }
  return { tiles, layers, config };
}

function geojsonLayer(data, name) {
  return L.geoJSON(data, {
    pane: "base",
    interactive: false,
    style: (f) => {
      if (f.geometry.type === "Point") return {}; // styled in pointToLayer
      const line = /LineString/.test(f.geometry.type);
      const main = f.properties?.kind === "main";
      return line
        ? { color: BASE_COLORS.road, weight: main ? 6 : 3.5, opacity: 0.75, lineCap: "round", className: `base-road base-${name}` }
        : { color: "#475569", weight: 1, fillColor: BASE_COLORS.building, fillOpacity: 0.55, className: `base-building base-${name}` };
    },
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, { pane: "base", radius: 4, color: "#0b1220", weight: 1, fillColor: BASE_COLORS.poi, fillOpacity: 0.9, className: `base-poi base-${name}` }),
    onEachFeature: (f, layer) => {
      const label = f.properties?.name;
      const point = f.geometry.type === "Point";
      if (!label || /Polygon/.test(f.geometry.type)) return; // buildings: the POIs name them
      // Roads and POIs are named along the map's own labels (a node: names come from files).
      layer.bindTooltip(h("span", {}, label), {
        permanent: true,
        direction: point ? "right" : "center",
        pane: "base",
        className: `base-label base-label-${point ? "poi" : "road"}`,
        offset: point ? [4, 0] : [0, 0],
      });
    },
  });
}

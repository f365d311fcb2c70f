// Case hotspots on the wall's map: a heat layer of this month's cases per place (GET
// /indicators/hotspots: per camera, per ~100 m square of hand reports), drawn on a canvas in a
// pane of its own above the areas, so it works over whatever base the map shows. A control
// in the map's corner switches it on and off (remembered) and is its legend. Where cases pile
// up over weeks is what the open-case colours of the areas cannot show.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { API, getJSON } from "./http.js";
import { t } from "./i18n.js";
import "./kpi-words.js";
import { rem } from "./wall-map.js";

const REFRESH_MS = 5 * 60_000; // a month's counts move slowly
const SHOWN_KEY = "gridwatch.wall.hotspots";
// Cold to hot, as the legend shows it.
const STOPS = [
  [0.0, "rgba(56, 189, 248, 0)"],
  [0.25, "#38bdf8"],
  [0.5, "#a3e635"],
  [0.75, "#facc15"],
  [1.0, "#ef4444"],
];
const GRADIENT = `linear-gradient(90deg, ${STOPS.slice(1).map(([, c]) => c).join(", ")})`;

/** 256 RGBA entries: the colour of each accumulated alpha. */
function palette() {
  const canvas = document.createElement("canvas");
  canvas.width = 256;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  const grad = ctx.createLinearGradient(0, 0, 256, 0);
  for (const [at, color] of STOPS) grad.addColorStop(at, color);
  ctx.fillStyle = grad;
  ctx.fillRect(0, 0, 256, 1);
  return ctx.getImageData(0, 0, 256, 1).data;
}

/** The heat layer: each place a soft disc weighted by its cases, the sum coloured. */
const HeatLayer = L.Layer.extend({
  initialize() {
    this.points = []; // [{lat, lon, cases}]
  },
  onAdd(map) {
    if (!map.getPane("hotspots")) {
      const pane = map.createPane("hotspots");
      pane.style.zIndex = 450; // above the areas (400), below tooltips and markers
      pane.style.pointerEvents = "none";
    }
    this.canvas = h("canvas", { class: "hotspot-canvas leaflet-zoom-hide", "data-testid": "hotspot-layer" });
    map.getPane("hotspots").append(this.canvas);
    map.on("moveend zoomend resize viewreset", this.redraw, this);
    this.redraw();
  },
  onRemove(map) {
    map.off("moveend zoomend resize viewreset", this.redraw, this);
    this.canvas.remove();
  },
  setPoints(points) {
    this.points = points;
    if (this._map) this.redraw();
  },
  redraw() {
    const map = this._map;
    if (!map) return;
    const size = map.getSize();
    L.DomUtil.setPosition(this.canvas, map.containerPointToLayerPoint([0, 0]));
    this.canvas.width = size.x;
    this.canvas.height = size.y;
    const ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    const max = Math.max(1, ...this.points.map((p) => p.cases));
    const radius = 2.2 * rem();
    let drawn = 0;
    for (const p of this.points) {
      const at = map.latLngToContainerPoint([p.lat, p.lon]);
      if (at.x < -radius || at.y < -radius || at.x > size.x + radius || at.y > size.y + radius) continue;
      const disc = ctx.createRadialGradient(at.x, at.y, 0, at.x, at.y, radius);
      disc.addColorStop(0, `rgba(0, 0, 0, ${Math.max(0.25, p.cases / max)})`);
      disc.addColorStop(1, "rgba(0, 0, 0, 0)");
      ctx.fillStyle = disc;
      ctx.fillRect(at.x - radius, at.y - radius, 2 * radius, 2 * radius);
      drawn += 1;
    }
    if (drawn && size.x && size.y) {
      const image = ctx.getImageData(0, 0, size.x, size.y);
      const colors = (this.colors ??= palette());
      const px = image.data;
      for (let i = 3; i < px.length; i += 4) {
        const a = px[i];
        if (!a) continue;
        px[i - 3] = colors[a * 4];
        px[i - 2] = colors[a * 4 + 1];
        px[i - 1] = colors[a * 4 + 2];
        px[i] = Math.min(255, 60 + a);
      }
      ctx.putImageData(image, 0, 0);
    }
    this.canvas.dataset.points = String(drawn);
    this.canvas.dataset.cases = String(this.points.reduce((s, p) => s + p.cases, 0));
  },
});

/** The switch and legend in the map's corner. */
const HotspotControl = L.Control.extend({
  options: { position: "bottomright" },
  initialize(toggle) {
    this.toggle = toggle;
  },
  onAdd() {
    this.button = h("button", { type: "button", class: "hotspot-toggle", "data-testid": "hotspot-toggle", title: t("hotspots.title"), onclick: () => this.toggle() }, t("hotspots.toggle"));
    this.total = h("span", { class: "hotspot-total", "data-testid": "hotspot-total" });
    const legend = h(
      "div",
      { class: "hotspot-legend", title: t("hotspots.title") },
      h("span", {}, t("hotspots.few")),
      h("span", { class: "hotspot-bar", style: { backgroundImage: GRADIENT } }),
      h("span", {}, t("hotspots.many")),
      this.total,
    );
    const box = h("div", { class: "leaflet-bar hotspot-control" }, this.button, legend);
    L.DomEvent.disableClickPropagation(box);
    return box;
  },
});

/**
 * Add the hotspot layer and its control to a Leaflet map and keep it loaded. Returns
 * {layer, load, setShown} for tests and debugging.
 */
export function mountHotspots(map) {
  const layer = new HeatLayer();
  let shown = localStorage.getItem(SHOWN_KEY) !== "off";
  const control = new HotspotControl(() => setShown(!shown));
  control.addTo(map);

  function setShown(on) {
    shown = on;
    localStorage.setItem(SHOWN_KEY, on ? "on" : "off");
    if (on) layer.addTo(map);
    else layer.remove();
    control.button.setAttribute("aria-pressed", String(on));
    control.getContainer().dataset.shown = String(on);
  }

  async function load() {
    try {
      const body = await getJSON(`${API}/indicators/hotspots?period=month`);
      layer.setPoints((body.places ?? []).map((p) => ({ lat: p.lat, lon: p.lon, cases: p.cases })));
      control.total.textContent = t("hotspots.cases", { n: body.cases ?? 0 });
    } catch (err) {
      console.warn("hotspots load failed", err.message);
    }
  }

  setShown(shown);
  load();
  setInterval(load, REFRESH_MS);
  return { layer, load, setShown };
}

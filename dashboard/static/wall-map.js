// The wall screen's district map (docs/map.md): grid and micro-grid polygons from GET
// /api/v1/district, coloured by open and overdue cases and labelled at district zoom, over the
// base the center's settings name (wall-map-base.js: tiles, or offline the deployment's GeoJSON
// roads, buildings and POIs); cameras as markers coloured by state, grouped into counted
// clusters where many sit close; open cases as pins coloured by state and lateness
// (wall-map-cases.js); a new alert pulses at its camera; a legend names every symbol. A click on
// a camera hands its id to `onCamera`, on a case its ticket id to `onCase` (the detail panel).
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { cameraStateName } from "./vocabulary.js";
import { BASE_COLORS, loadBase } from "./wall-map-base.js";
import { MapLegend } from "./wall-map-legend.js";
import { CASE_COLORS, CaseLayer, isLate } from "./wall-map-cases.js";
import { groupByCell, rem } from "./wall-map-cluster.js";
import { declutter } from "./wall-map-labels.js";
import { WorkerLayer } from "./wall-workers.js";
import "./staff-words.js";

const PULSE_MS = 6000;
const COLORS = {
  none: "#38bdf8",
  open: "#f59e0b",
  overdue: "#ef4444",
  emergency: "#f43f5e",
  cam: { online: "#22c55e", offline: "#ef4444", frozen: "#a78bfa", lagging: "#f59e0b", unknown: "#64748b" },
  alerting: "#ff3b30",
  micro: "#93c5fd",
  cluster: "#0ea5e9",
  ...BASE_COLORS,
  cases: CASE_COLORS,
};
//: From this many cameras on, cameras closer than CLUSTER_REM on screen show as one counted dot.
const CLUSTER_FROM = 40;
const CLUSTER_REM = 2.2;
//: How often a case's lateness is looked at again (its deadline passes without a message).
const LATE_CHECK_MS = 5_000;

/** The camera's id and state on its SVG path, for the detail panel's and tests' selectors. */
function tagMarker(marker) {
  const path = marker.getElement?.();
  if (path && marker.gridwatch) {
    path.dataset.cameraId = marker.gridwatch.id;
    path.dataset.state = marker.gridwatch.state;
  }
}

export { rem }; // wall-hotspots.js's and wall.js's import

export class DistrictMap {
  constructor(el, { onCamera = null, onCase = null } = {}) {
    this.el = el;
    this.onCamera = onCamera;
    this.map = L.map(el, {
      attributionControl: false,
      zoomControl: true,
      zoomSnap: 0.25,
      zoomDelta: 0.5,
      renderer: L.svg({ padding: 0.2 }),
    });
    this.map.setView([0, 0], 2);
    this.gridLayer = L.layerGroup().addTo(this.map);
    this.microLayer = L.layerGroup();
    this.cameraLayer = L.layerGroup().addTo(this.map);
    this.pulseLayer = L.layerGroup().addTo(this.map);
    this.areas = new Map(); // id -> {feature, layer}
    this.cameraMarkers = new Map(); // id -> circleMarker
    this.cameraPos = new Map(); // id -> [lat, lon]
    this.counts = new Map(); // area id -> {open, overdue}
    this.emergency = new Set();
    this.fitZoom = null;
    this.clusterLayer = L.layerGroup().addTo(this.map);
    this.map.on("zoomend", () => this._toggleMicro());
    this.map.on("zoomend", () => this._cluster());
    // Whatever is added, removed or rescaled may now overlap a label: one pass per frame.
    this.map.on("zoomend layeradd layerremove", () => this._declutterSoon());
    this.legend = new MapLegend(COLORS).addTo(this.map);
    this.cases = new CaseLayer(this.map, { onCase });
    this.tickets = [];
    setInterval(() => this.cases.lateChanged() && this.setTickets(this.tickets), LATE_CHECK_MS);
    this.workers = new WorkerLayer(this.map); // on-duty workers (docs/presence.md)
    this.fitted = new Promise((resolve) => (this._fittedNow = resolve));
    new ResizeObserver(() => this._resize()).observe(el);
  }

  /**
   * What the map asks of the center: its base and the workers' positions. Called once the
   * page is logged in: both need the token, and a refusal would reload the page.
   */
  start() {
    this.workers.start();
    this.base = loadBase(this.map, { onCrs: (crs) => this._setCrs(crs), fitted: this.fitted }).then(
      (base) => {
        if (base.tiles || base.layers.size) this.legend.show("base");
        this.el.dataset.base = base.tiles ? "tiles" : base.layers.size ? "layers" : "none";
        return base;
      },
      (err) => {
        this.el.dataset.base = "failed";
        console.warn("map base:", err);
      },
    );
    return this;
  }

  /** A tile source in another datum (GCJ-02): reproject everything, stored WGS-84 stays. */
  _setCrs(crs) {
    this.map.options.crs = crs;
    this.map.setView(this.map.getCenter(), this.map.getZoom(), { reset: true, animate: false });
    if (this.areas.size) this._fit();
  }

  /** (Re)build the polygons from the district's GeoJSON areas. */
  setAreas(featureCollection) {
    this.gridLayer.clearLayers();
    this.microLayer.clearLayers();
    this.areas.clear();
    const features = featureCollection?.features ?? [];
    for (const feature of features) {
      const p = feature.properties || {};
      const layer = L.geoJSON(feature, { style: () => this._style(p) }).getLayers()[0];
      if (!layer) continue;
      // Labels sit on the polygon's edge, not its middle where cameras are: a grid's name above
      // its top edge, a micro-grid's just inside its bottom edge.
      const b = layer.getBounds();
      const micro = p.level === "micro_grid";
      const label = L.tooltip({
        permanent: true,
        direction: "top",
        offset: [0, micro ? -0.2 * rem() : 0],
        className: `area-label area-label-${p.level}`,
      })
        .setLatLng([micro ? b.getSouth() : b.getNorth(), b.getCenter().lng])
        .setContent(this._label(p));
      (micro ? this.microLayer : this.gridLayer).addLayer(label);
      this.areas.set(p.id, { feature, layer, label, props: p });
      (p.level === "micro_grid" ? this.microLayer : this.gridLayer).addLayer(layer);
    }
    if (features.length) this._fit();
  }

  setCameras(cameras) {
    for (const camera of cameras) {
      if (camera.lat == null || camera.lon == null) continue;
      this.cameraPos.set(String(camera.id), [camera.lat, camera.lon]);
    }
  }

  /** Per-area open / overdue counts and the case pins, from the open tickets. */
  setTickets(tickets) {
    this.tickets = [...tickets];
    const counts = new Map();
    const bump = (id, overdue) => {
      if (!id) return;
      const c = counts.get(id) ?? { open: 0, overdue: 0 };
      c.open += 1;
      if (overdue) c.overdue += 1;
      counts.set(id, c);
    };
    const now = Date.now();
    for (const ticket of this.tickets) {
      const late = isLate(ticket, now); // the pins' rule: an area is overdue when a pin in it is late
      bump(ticket.grid_id, late);
      bump(ticket.micro_grid_id, late);
    }
    this.counts = counts;
    this.cases.setTickets(this.tickets);
    this._restyle();
  }

  setEmergency(scopes) {
    this.emergency = new Set(scopes);
    this._restyle();
  }

  /** Camera markers: colour from the camera's state, or "alerting" while it has a live alert. */
  renderCameras(cameras, alertingIds) {
    this._lastCameras = [cameras, alertingIds];
    const seen = new Set();
    const r = rem();
    for (const camera of cameras) {
      const id = String(camera.id);
      const pos = camera.lat != null && camera.lon != null ? [camera.lat, camera.lon] : this.cameraPos.get(id);
      if (!pos) continue;
      this.cameraPos.set(id, pos);
      seen.add(id);
      const alerting = alertingIds.has(id);
      const state = camera.state || "unknown";
      const color = alerting ? COLORS.alerting : COLORS.cam[state] ?? COLORS.cam.unknown;
      const style = {
        radius: alerting ? 0.65 * r : 0.5 * r,
        color: "#0b1220",
        weight: Math.max(1, 0.14 * r),
        fillColor: color,
        fillOpacity: 1,
        className: `cam-marker cam-marker-${alerting ? "alerting" : state}`,
      };
      let marker = this.cameraMarkers.get(id);
      if (!marker) {
        marker = L.circleMarker(pos, style).addTo(this.cameraLayer);
        marker.bindTooltip("", { direction: "top", className: "cam-tip", offset: [0, -0.6 * r] });
        marker.on("click", () => this.onCamera?.(id));
        this.cameraMarkers.set(id, marker);
      } else {
        marker.setLatLng(pos).setStyle(style);
        marker.setRadius(style.radius);
      }
      // A node, not a string: Leaflet parses a string tooltip as HTML, and names come from the API.
      marker.setTooltipContent(h("span", {}, `${camera.name || id} · ${alerting ? t("cam.alerting") : cameraStateName(state)}`));
      marker.gridwatch = { id, state: alerting ? "alerting" : state };
      tagMarker(marker);
    }
    for (const [id, marker] of this.cameraMarkers) {
      if (!seen.has(id)) {
        marker.remove();
        this.cameraMarkers.delete(id);
      }
    }
    this._cluster();
    this._labelsClearOfCameras();
  }

  /**
   * A micro-grid's name sits inside its bottom edge, or inside its top edge, in the middle or
   * slid to either side within the micro-grid: the first place where no camera dot or case pin
   * is under it, else the one with fewest (names and markers must both stay readable).
   */
  _labelsClearOfCameras() {
    const dots = [...this.el.querySelectorAll("path.cam-marker, .cam-cluster span, .case-pin")].map((d) => d.getBoundingClientRect());
    const hits = (box) => dots.filter((d) => d.left < box.right && box.left < d.right && d.top < box.bottom && box.top < d.bottom).length;
    for (const { layer, label, props } of this.areas.values()) {
      const el = label.getElement();
      if (props.level !== "micro_grid" || !el) continue;
      const b = layer.getBounds();
      // How far the name's centre may slide from the middle and stay inside the micro-grid.
      const width = this.map.latLngToContainerPoint(b.getSouthEast()).x - this.map.latLngToContainerPoint(b.getSouthWest()).x;
      const slack = Math.max(0, (width - el.offsetWidth) / 2 - 0.3 * rem()) / Math.max(width, 1);
      const lng = (f) => b.getCenter().lng + f * (b.getEast() - b.getWest());
      const places = [false, true].flatMap((top) => [0, -slack, slack].map((f) => [top, lng(f)]));
      const put = ([top, at]) => {
        label.options.direction = top ? "bottom" : "top";
        label.options.offset = [0, (top ? 0.2 : -0.2) * rem()];
        label.setLatLng([top ? b.getNorth() : b.getSouth(), at]);
        return hits(el.getBoundingClientRect());
      };
      let best = null;
      for (const place of places) {
        const n = put(place);
        if (!n) {
          best = null;
          break;
        }
        if (!best || n < best.n) best = { place, n };
      }
      if (best) put(best.place);
    }
    this._declutterSoon();
  }

  /** The label rule (wall-map-labels.js), once the frame's changes are in. */
  _declutterSoon() {
    if (this._declutterFrame) return;
    this._declutterFrame = requestAnimationFrame(() => {
      this._declutterFrame = null;
      // Base names from the district zoom on: zoomed out they would be a blur.
      declutter(this.el, { baseNames: this.fitZoom == null || this.map.getZoom() >= this.fitZoom - 0.01 });
    });
  }

  /**
   * Many cameras (a district has about a thousand): those closer than CLUSTER_REM on screen
   * show as one dot with their count, red when one of them alerts; a click zooms to them.
   * Regrouped at every zoom, so zooming in splits clusters down to single cameras.
   */
  _cluster() {
    this.clusterLayer.clearLayers();
    const show = (m) => {
      if (!this.cameraLayer.hasLayer(m)) {
        this.cameraLayer.addLayer(m);
        tagMarker(m); // a re-added path is a new element
      }
    };
    if (this.cameraMarkers.size < CLUSTER_FROM || !this.el.clientWidth) {
      this.cameraMarkers.forEach(show);
      this.el.dataset.clusters = "0";
      return;
    }
    let clusters = 0;
    for (const group of groupByCell(this.map, this.cameraMarkers.values(), CLUSTER_REM * rem(), (m) => m.getLatLng())) {
      if (group.length === 1) {
        show(group[0]);
        continue;
      }
      clusters += 1;
      for (const m of group) this.cameraLayer.removeLayer(m);
      const bounds = L.latLngBounds(group.map((m) => m.getLatLng()));
      const alerting = group.some((m) => m.gridwatch?.state === "alerting");
      const icon = L.divIcon({
        className: `cam-cluster${alerting ? " is-alerting" : ""}`,
        html: h("span", { dataset: { count: String(group.length) } }, String(group.length)),
        iconSize: null,
      });
      const marker = L.marker(bounds.getCenter(), { icon, keyboard: false }).addTo(this.clusterLayer);
      // Cameras at one spot have no extent: stop at street level, not at an endless zoom.
      const maxZoom = Math.min(this.map.getMaxZoom(), 19);
      marker.on("click", () => this.map.fitBounds(bounds.pad(0.3), { animate: false, maxZoom }));
    }
    this.el.dataset.clusters = String(clusters);
  }

  /** A ring that pulses at the alert's camera for a few seconds. */
  pulse(cameraId, latlng) {
    const pos = latlng ?? this.cameraPos.get(String(cameraId));
    if (!pos) return;
    const icon = L.divIcon({ className: "map-pulse", html: "<span></span><span></span>", iconSize: null });
    const marker = L.marker(pos, { icon, interactive: false, keyboard: false }).addTo(this.pulseLayer);
    marker.getElement()?.setAttribute("data-camera-id", String(cameraId ?? ""));
    setTimeout(() => marker.remove(), PULSE_MS);
  }

  _label(p) {
    const c = this.counts.get(p.id);
    const wrap = document.createElement("div");
    const name = document.createElement("div");
    name.className = "area-name";
    name.textContent = p.name || p.id;
    wrap.append(name);
    if (c?.open) {
      const n = document.createElement("div");
      n.className = "area-counts";
      n.textContent = `${t("wall.map.open")} ${c.open}${c.overdue ? ` · ${t("wall.map.overdue")} ${c.overdue}` : ""}`;
      if (c.overdue) n.classList.add("has-overdue");
      wrap.append(n);
    }
    return wrap;
  }

  _style(p) {
    const c = this.counts.get(p.id) ?? { open: 0, overdue: 0 };
    const micro = p.level === "micro_grid";
    const r = rem();
    const emergency = this.emergency.has("district") || this.emergency.has(p.id) || this.emergency.has(p.parent);
    let color = micro ? COLORS.micro : COLORS.none;
    let fillOpacity = micro ? 0.04 : 0.08;
    if (c.overdue) {
      color = COLORS.overdue;
      fillOpacity = 0.32 + Math.min(c.overdue, 5) * 0.04;
    } else if (c.open) {
      color = COLORS.open;
      fillOpacity = 0.16 + Math.min(c.open, 5) * 0.05;
    }
    return {
      color: emergency && !micro ? COLORS.emergency : color,
      weight: (micro ? 0.1 : emergency ? 0.28 : 0.16) * r,
      opacity: micro ? 0.9 : 1,
      dashArray: emergency && !micro ? `${0.8 * r} ${0.4 * r}` : null,
      fillColor: color,
      fillOpacity,
      className: `area area-${p.level} ${c.overdue ? "area-overdue" : c.open ? "area-open" : "area-clear"}`,
    };
  }

  _restyle() {
    for (const { layer, label, props } of this.areas.values()) {
      layer.setStyle(this._style(props));
      const el = layer.getElement?.();
      if (el) {
        el.dataset.areaId = props.id;
        el.dataset.level = props.level;
        el.dataset.open = String(this.counts.get(props.id)?.open ?? 0);
        el.dataset.overdue = String(this.counts.get(props.id)?.overdue ?? 0);
      }
      label.setContent(this._label(props));
    }
    this._labelsClearOfCameras();
  }

  _fit() {
    // A hidden map (the video wall in its place) has no size to fit to: fit once it is shown.
    this.fitPending = !this.el.clientWidth || !this.el.clientHeight;
    if (this.fitPending) return;
    const bounds = L.latLngBounds([]);
    for (const { layer } of this.areas.values()) bounds.extend(layer.getBounds());
    if (!bounds.isValid()) return;
    // Room above for the grids' names, and on the left for the legend (bottom-left corner):
    // it must not cover a camera or a name.
    const r = rem();
    const legend = this.legend.getContainer()?.offsetWidth ?? 0;
    this.map.fitBounds(bounds, { paddingTopLeft: [legend + 1.5 * r, 3.5 * r], paddingBottomRight: [1.5 * r, 1.5 * r], animate: false });
    this.fitZoom = this.map.getZoom();
    this._fittedNow();
    this._toggleMicro();
    this._restyle();
  }

  _toggleMicro() {
    // Micro-grids (and their names) show from the whole-district view on: that is where an
    // operator reads them. Zoomed out further they would be a blur of lines and names.
    const show = !this.gridLayer.getLayers().length || this.fitZoom == null || this.map.getZoom() >= this.fitZoom - 0.5;
    if (show && !this.map.hasLayer(this.microLayer)) this.map.addLayer(this.microLayer);
    if (!show && this.map.hasLayer(this.microLayer)) this.map.removeLayer(this.microLayer);
    this.el.dataset.microGrids = show ? "shown" : "hidden";
    this.el.classList.toggle("micro-shown", show);
    if (show) this._restyle();
  }

  _resize() {
    if (!this.el.clientWidth || !this.el.clientHeight) return; // hidden: nothing to redraw
    this.map.invalidateSize({ animate: false });
    const atFit = this.fitZoom != null && Math.abs(this.map.getZoom() - this.fitZoom) < 0.01;
    if (this.areas.size && (this.fitPending || atFit)) this._fit();
    // Line widths and marker sizes are in rem: redraw them at the new scale.
    this._restyle();
    if (this._lastCameras) this.renderCameras(...this._lastCameras);
    this.cases.render();
  }
}

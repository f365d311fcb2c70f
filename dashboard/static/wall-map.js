// The wall screen's district map: grid polygons from GET /api/v1/district (vector only, no tile
// server: wall screens run on isolated networks), coloured by open and overdue cases; micro-grids
// appear when zoomed in; cameras as markers coloured online / offline / alerting; a new alert
// pulses at its camera. A click on a camera hands its id to `onCamera` (the detail panel).
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { cameraStateName } from "./vocabulary.js";
import "./staff-words.js";

const PULSE_MS = 6000;
const COLORS = {
  none: "#38bdf8",
  open: "#f59e0b",
  overdue: "#ef4444",
  emergency: "#f43f5e",
  cam: { online: "#22c55e", offline: "#ef4444", frozen: "#a78bfa", lagging: "#f59e0b", unknown: "#64748b" },
  alerting: "#ff3b30",
};

/** Root font size in px: everything on the wall scales with it (1 rem = 16 px at 1920×1080). */
export const rem = () => parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;

export class DistrictMap {
  constructor(el, { onCamera = null } = {}) {
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
    this.map.on("zoomend", () => this._toggleMicro());
    new ResizeObserver(() => this._resize()).observe(el);
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
      layer.bindTooltip(this._label(p), {
        permanent: true,
        direction: "center",
        className: `area-label area-label-${p.level}`,
      });
      this.areas.set(p.id, { feature, layer, props: p });
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

  /** Per-area open / overdue counts from the open tickets. */
  setTickets(tickets) {
    const counts = new Map();
    const bump = (id, overdue) => {
      if (!id) return;
      const c = counts.get(id) ?? { open: 0, overdue: 0 };
      c.open += 1;
      if (overdue) c.overdue += 1;
      counts.set(id, c);
    };
    for (const ticket of tickets) {
      bump(ticket.grid_id, ticket.overdue);
      bump(ticket.micro_grid_id, ticket.overdue);
    }
    this.counts = counts;
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
      const path = marker.getElement?.();
      if (path) {
        path.dataset.cameraId = id;
        path.dataset.state = alerting ? "alerting" : state;
      }
    }
    for (const [id, marker] of this.cameraMarkers) {
      if (!seen.has(id)) {
        marker.remove();
        this.cameraMarkers.delete(id);
      }
    }
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
    let color = COLORS.none;
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
      weight: (micro ? 0.09 : emergency ? 0.28 : 0.16) * r,
      opacity: micro ? 0.8 : 1,
      dashArray: micro ? `${0.4 * r} ${0.3 * r}` : emergency ? `${0.8 * r} ${0.4 * r}` : null,
      fillColor: color,
      fillOpacity,
      className: `area area-${p.level} ${c.overdue ? "area-overdue" : c.open ? "area-open" : "area-clear"}`,
    };
  }

  _restyle() {
    for (const { layer, props } of this.areas.values()) {
      layer.setStyle(this._style(props));
      const el = layer.getElement?.();
      if (el) {
        el.dataset.areaId = props.id;
        el.dataset.level = props.level;
        el.dataset.open = String(this.counts.get(props.id)?.open ?? 0);
        el.dataset.overdue = String(this.counts.get(props.id)?.overdue ?? 0);
      }
      layer.getTooltip()?.setContent(this._label(props));
    }
  }

  _fit() {
    // A hidden map (the video wall in its place) has no size to fit to: fit once it is shown.
    this.fitPending = !this.el.clientWidth || !this.el.clientHeight;
    if (this.fitPending) return;
    const bounds = this.gridLayer.getLayers().length
      ? L.featureGroup(this.gridLayer.getLayers()).getBounds()
      : L.featureGroup(this.microLayer.getLayers()).getBounds();
    if (!bounds.isValid()) return;
    this.map.fitBounds(bounds, { padding: [1.5 * rem(), 1.5 * rem()], animate: false });
    this.fitZoom = this.map.getZoom();
    this._toggleMicro();
    this._restyle();
  }

  _toggleMicro() {
    // Micro-grids show once zoomed in past the whole-district view (or when there are no grids).
    const show = !this.gridLayer.getLayers().length || (this.fitZoom != null && this.map.getZoom() >= this.fitZoom + 0.75);
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
  }
}

// Workers on the wall's map (docs/presence.md): a marker per on-duty worker at their last
// position, with name, post and micro-grid; a position older than the center's
// stale_after_s looks stale (grey, dashed ring, "position is stale"); a click on a worker draws
// their track of today and a second click clears it. Check-out removes the marker.
//
// The wall's websocket feeds it (`onMessage`): "position" and "duty" events move and remove
// markers within the push's latency; every (re)connect, and a "summary" (this wall fell behind
// and got only the latest events), reloads GET /api/v1/presence/positions. One socket per wall:
// a socket of the layer's own would bring every wall event to the page a second time.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { fmtDateTime, parseTime } from "./format.js";
import { API, getJSON } from "./http.js";
import { t } from "./i18n.js";
import { reloadOnSummary } from "./live-socket.js";
import "./presence-words.js";

const COLORS = { fresh: "#22d3ee", stale: "#64748b", track: "#22d3ee" };
const RESTALE_MS = 10000;
// Roles that see no positions (docs/presence.md, "Who sees what").
const HIDDEN_FROM = ["engineer", "department_staff"];

export class WorkerLayer {
  constructor(map) {
    this.map = map;
    this.layer = L.layerGroup().addTo(map);
    this.trackLayer = L.layerGroup().addTo(map);
    this.workers = new Map(); // person id -> {data, marker}
    this.selected = null;
    this.shown = false;
    this.reloadSoon = reloadOnSummary(() => this.load());
  }

  start() {
    setInterval(() => this.restyle(), RESTALE_MS);
    return this;
  }

  async load() {
    let list;
    try {
      list = await getJSON(`${API}/presence/positions`);
    } catch (err) {
      console.warn("worker positions not loaded", err.message);
      return;
    }
    const seen = new Set(list.map((p) => p.person_id));
    for (const id of [...this.workers.keys()]) if (!seen.has(id)) this.remove(id);
    for (const p of list) this.place(p);
  }

  onMessage(msg) {
    // Each (re)connect's hello names the screen's person: engineers' walls show no workers.
    if (msg.type === "hello") {
      this.shown = !HIDDEN_FROM.includes(msg.data?.role);
      if (this.shown) this.load();
    }
    if (!this.shown) return;
    // A wall that fell behind got only each worker's latest event, then a summary: reload.
    if (msg.type === "summary") this.reloadSoon();
    else if (msg.type === "position") this.place(msg.data);
    else if (msg.type === "duty" && !msg.data?.on_duty) this.remove(msg.data?.person_id);
  }

  place(p) {
    if (p.lat == null || p.lon == null) return;
    const id = String(p.person_id);
    let entry = this.workers.get(id);
    if (!entry) {
      const marker = L.marker([p.lat, p.lon], { icon: this.icon(p), keyboard: false, riseOnHover: true });
      marker.on("click", () => this.toggleTrack(id));
      marker.addTo(this.layer);
      entry = { data: p, marker };
      this.workers.set(id, entry);
    } else {
      entry.data = p;
      entry.marker.setLatLng([p.lat, p.lon]);
    }
    this.restyle(id);
    if (this.selected === id) this.showTrack(id);
  }

  remove(id) {
    const entry = this.workers.get(String(id));
    if (!entry) return;
    entry.marker.remove();
    this.workers.delete(String(id));
    if (this.selected === String(id)) this.clearTrack();
  }

  isStale(p) {
    const at = parseTime(p.at);
    return !at || Date.now() - at.getTime() > (p.stale_after_s ?? 120) * 1000;
  }

  icon(p) {
    const stale = this.isStale(p);
    const dot = h("span", {
      class: "worker-dot",
      style: {
        display: "inline-block", width: "0.9rem", height: "0.9rem", borderRadius: "50%",
        background: stale ? COLORS.stale : COLORS.fresh, border: `0.15rem ${stale ? "dashed" : "solid"} #0b1220`,
        verticalAlign: "middle",
      },
    });
    const label = h("span", {
      class: "worker-label",
      style: {
        marginLeft: "0.3rem", padding: "0 0.3rem", borderRadius: "0.25rem", whiteSpace: "nowrap",
        background: "rgba(11,18,32,0.8)", color: stale ? "#94a3b8" : "#e2e8f0", fontSize: "0.8rem",
        fontStyle: stale ? "italic" : "normal",
      },
    }, `${p.name || p.person_id}${p.post ? ` · ${t(`presence.post.${p.post}`)}` : ""}`);
    const el = h("div", {
      class: `worker-marker${stale ? " is-stale" : ""}`,
      dataset: { personId: p.person_id, stale: String(stale), at: p.at, testid: "worker-marker" },
      title: [
        `${p.name || p.person_id} (${p.person_id}) · ${p.micro_grid_id || ""}`,
        `${t("presence.last_fix")} ${fmtDateTime(p.at)}${p.accuracy_m != null ? ` ±${Math.round(p.accuracy_m)} m` : ""}`,
        `${t("presence.on_duty_since")} ${fmtDateTime(p.since)}`,
        stale ? t("presence.stale") : "",
      ].filter(Boolean).join("\n"),
      style: { display: "flex", alignItems: "center", transform: "translate(-0.45rem, -0.45rem)" },
    }, dot, label);
    return L.divIcon({ className: "worker-icon", html: el, iconSize: null });
  }

  restyle(only = null) {
    for (const [id, entry] of this.workers) {
      if (only !== null && id !== only) continue;
      const stale = this.isStale(entry.data);
      if (only === null && entry.stale === stale) continue;
      entry.stale = stale;
      entry.marker.setIcon(this.icon(entry.data));
    }
  }

  toggleTrack(id) {
    if (this.selected === id) this.clearTrack();
    else this.showTrack(id);
  }

  clearTrack() {
    this.selected = null;
    this.trackLayer.clearLayers();
  }

  async showTrack(id) {
    this.selected = id;
    let track;
    try {
      track = await getJSON(`${API}/presence/tracks/${encodeURIComponent(id)}/today`);
    } catch (err) {
      console.warn("track not loaded", err.message);
      return;
    }
    if (this.selected !== id) return;
    this.trackLayer.clearLayers();
    const points = track.points.map((p) => [p.lat, p.lon]);
    if (!points.length) return;
    const line = L.polyline(points, { color: COLORS.track, weight: 3, opacity: 0.85, className: "worker-track" });
    line.bindTooltip(`${t("presence.track")} · ${track.patrol_km} ${t("presence.km")}`, { sticky: true });
    line.addTo(this.trackLayer);
    line.getElement?.()?.setAttribute("data-person-id", id);
  }
}

// The wall's video wall: 1 / 4 / 9 / 16 tiles playing cameras live, rotating (轮巡) through an
// area's cameras at a set interval, and linkage: a new alert or an escalated case pins its camera
// to a tile with the zone drawn over it and a label, until an operator dismisses it; pinned tiles
// are never rotated away. A tile whose live view is unavailable shows the camera's latest
// evidence picture and says why. Tiles are kept per camera across re-renders, so a camera that
// stays on the wall keeps playing.
import { h } from "./dom.js";
import { fmtTime } from "./format.js";
import { t } from "./i18n.js";
import { signUrl } from "./signed-urls.js";
import { eventName } from "./vocabulary.js";
import "./wall-words.js";
import { cameraSetup, latestAlert, liveWord, playLive, zonesOf } from "./wall-cameras.js";
import { addPatrol } from "./wall-patrol.js";
import { fitStage, zoneOverlay } from "./zone-overlay.js";

export const LAYOUTS = [1, 4, 9, 16];
export const INTERVALS_S = [0, 10, 30, 60, 120];
const SETTINGS_KEY = "gridwatch.wall.video";
// Pinned cameras wait for an operator: a wall screen that reloads (or restarts) keeps them.
const PINS_KEY = "gridwatch.wall.video.pins";
const DEFAULTS = { layout: 4, area: "", interval: 30 };
const PIN_MAX = 64; // linked cameras remembered (beyond the tiles, they wait for a free one)

function readSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}");
    const layout = LAYOUTS.includes(saved.layout) ? saved.layout : DEFAULTS.layout;
    const interval = INTERVALS_S.includes(saved.interval) ? saved.interval : DEFAULTS.interval;
    return { layout, interval, area: typeof saved.area === "string" ? saved.area : DEFAULTS.area };
  } catch {
    return { ...DEFAULTS };
  }
}

function readPins() {
  try {
    const saved = JSON.parse(localStorage.getItem(PINS_KEY) || "[]");
    return Array.isArray(saved) ? saved.filter((p) => p && typeof p.cameraId === "string").slice(0, PIN_MAX) : [];
  } catch {
    return [];
  }
}

export class VideoWall {
  /**
   * `root`: the panel; `state`: the wall's state (cameras, district); `openCamera(id, el)` and
   * `openAlert(id, el)`: the detail panel.
   */
  constructor(root, { state, openCamera, openAlert }) {
    this.root = root;
    this.state = state;
    this.openCamera = openCamera;
    this.openAlert = openAlert;
    this.settings = readSettings();
    this.pins = readPins(); // [{cameraId, zoneId, alertId, eventType, eventName, reason, at, snapshotUrl}], newest first
    this.offset = 0; // rotation position in the area's camera list
    this.tiles = new Map(); // camera id -> tile
    this.active = false; // shown on screen (the wall's video mode)
    this.timer = null;
    this.grid = root.querySelector(".video-grid");
    this._controls();
  }

  // --- settings -------------------------------------------------------------------------------

  _controls() {
    const layouts = this.root.querySelector(".video-layouts");
    layouts.replaceChildren(...LAYOUTS.map((n) => h("button", {
      type: "button", class: "video-layout", dataset: { layout: n }, "data-testid": `video-layout-${n}`,
      "aria-pressed": String(n === this.settings.layout), onclick: () => this.setLayout(n),
    }, String(n))));
    const interval = this.root.querySelector(".video-interval");
    interval.replaceChildren(...INTERVALS_S.map((s) => h("option", { value: s, selected: s === this.settings.interval },
      s ? t("wall.video.seconds", { n: s }) : t("wall.video.interval.off"))));
    interval.addEventListener("change", () => this.setInterval(Number(interval.value)));
    const area = this.root.querySelector(".video-area");
    area.addEventListener("change", () => this.setArea(area.value));
    this.fillAreas();
  }

  /** The rotation's choice of areas: the whole district, then each grid (after /district). */
  fillAreas() {
    const select = this.root.querySelector(".video-area");
    const grids = (this.state.district?.areas?.features ?? []).map((f) => f.properties ?? {}).filter((p) => p.level === "grid");
    select.replaceChildren(h("option", { value: "" }, t("wall.video.area.all")),
      ...grids.map((g) => h("option", { value: g.id, selected: g.id === this.settings.area }, g.name || g.id)));
  }

  _save() {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(this.settings));
  }

  setLayout(n) {
    if (!LAYOUTS.includes(n)) return;
    this.settings.layout = n;
    this._save();
    for (const b of this.root.querySelectorAll(".video-layout")) b.setAttribute("aria-pressed", String(Number(b.dataset.layout) === n));
    this.render();
  }

  setArea(areaId) {
    this.settings.area = areaId;
    this.offset = 0;
    this._save();
    this.render();
  }

  setInterval(seconds) {
    this.settings.interval = seconds;
    this._save();
    this._schedule();
  }

  /** Shown or hidden (the wall's mode): hidden, nothing plays and nothing rotates. */
  setActive(on) {
    this.active = on;
    this._schedule();
    this.render();
  }

  _schedule() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.active && this.settings.interval > 0) this.timer = setInterval(() => this.rotate(), this.settings.interval * 1000);
  }

  // --- which cameras ---------------------------------------------------------------------------

  /** The cameras the rotation goes through: the chosen grid's (by their micro-grid), in name order. */
  areaCameras() {
    const area = this.settings.area;
    const parentOf = new Map((this.state.district?.areas?.features ?? []).map((f) => [f.properties?.id, f.properties?.parent]));
    return [...this.state.cameras.values()]
      .filter((c) => !area || c.micro_grid_id === area || parentOf.get(c.micro_grid_id) === area)
      .sort((a, b) => String(a.name || a.id).localeCompare(String(b.name || b.id)))
      .map((c) => String(c.id));
  }

  /** What each tile shows now: the newest pins first, then the rotation's cameras. */
  plan() {
    const n = this.settings.layout;
    const pinned = this.pins.slice(0, n);
    const taken = new Set(pinned.map((p) => p.cameraId));
    const pool = this.areaCameras().filter((id) => !taken.has(id));
    const free = n - pinned.length;
    const rotating = [];
    for (let i = 0; i < Math.min(free, pool.length); i += 1) rotating.push(pool[(this.offset + i) % pool.length]);
    return [...pinned.map((p) => ({ cameraId: p.cameraId, pin: p })), ...rotating.map((id) => ({ cameraId: id, pin: null }))];
  }

  /** Next cameras of the area into the free tiles (pinned tiles stay). */
  rotate() {
    const pool = this.areaCameras().filter((id) => !this.pins.some((p) => p.cameraId === id));
    const free = this.settings.layout - Math.min(this.pins.length, this.settings.layout);
    if (pool.length <= free || free <= 0) return; // everything fits: nothing to rotate
    this.offset = (this.offset + free) % pool.length;
    this.render();
  }

  // --- linkage ---------------------------------------------------------------------------------

  /**
   * Pull a camera onto the wall: `reason` "alert" (a new alert) or "escalated" (its case was
   * escalated). A camera already pinned moves to the front with the newer label.
   */
  link({ cameraId, zoneId = null, alertId = null, eventType = null, eventName: name = null, snapshotUrl = null, reason = "alert", at = null }) {
    if (!cameraId) return;
    const id = String(cameraId);
    this.pins = this.pins.filter((p) => p.cameraId !== id);
    this.pins.unshift({ cameraId: id, zoneId, alertId, eventType, eventName: name, snapshotUrl, reason, at: at ?? new Date().toISOString() });
    this.pins.length = Math.min(this.pins.length, PIN_MAX);
    localStorage.setItem(PINS_KEY, JSON.stringify(this.pins));
    this.render();
  }

  /** The operator is done with a linked camera: its tile goes back to the rotation. */
  dismiss(cameraId) {
    this.pins = this.pins.filter((p) => p.cameraId !== String(cameraId));
    localStorage.setItem(PINS_KEY, JSON.stringify(this.pins));
    this.render();
  }

  // --- tiles -----------------------------------------------------------------------------------

  render() {
    const n = this.settings.layout;
    const side = Math.sqrt(n);
    this.grid.style.setProperty("--side", String(side));
    this.grid.dataset.layout = String(n);
    const plan = this.active ? this.plan() : [];
    const wanted = new Set(plan.map((x) => x.cameraId));
    for (const [id, tile] of this.tiles) {
      if (!wanted.has(id)) {
        tile.stop();
        this.tiles.delete(id);
      }
    }
    const els = plan.map(({ cameraId, pin }) => {
      let tile = this.tiles.get(cameraId);
      if (!tile) {
        tile = this._tile(cameraId);
        this.tiles.set(cameraId, tile);
      }
      tile.update(pin);
      return tile.el;
    });
    for (let i = els.length; i < n; i += 1) els.push(h("div", { class: "video-tile is-empty" }, h("span", {}, t("wall.video.empty"))));
    this.grid.replaceChildren(...els);
    const linked = this.pins.length;
    const count = this.root.querySelector(".video-linked");
    count.textContent = linked ? `${t("wall.video.linked")} ${linked}` : "";
    count.dataset.count = String(linked);
    const waiting = this.root.querySelector(".video-waiting");
    waiting.hidden = linked <= n;
    waiting.textContent = linked > n ? t("wall.video.waiting", { n: linked - n }) : "";
    document.dispatchEvent(new CustomEvent("gridwatch:video-pins", { detail: { count: linked } }));
  }

  _tile(cameraId) {
    const camera = () => this.state.cameras.get(cameraId);
    const video = h("video", { class: "media-video", muted: true, autoplay: true, playsinline: true });
    video.muted = true;
    // The stand-in picture sits in the stage with the video, so the zones lie over either.
    const still = h("img", { class: "media-img tile-still", alt: "", hidden: true, "data-testid": "tile-evidence" });
    still.addEventListener("error", () => (still.hidden = true));
    const reasonEl = h("span", { class: "tile-reason", "data-testid": "tile-reason", hidden: true });
    const noPicture = h("span", { class: "tile-no-picture", hidden: true }, t("wall.video.no_picture"));
    const stage = h("div", { class: "media-stage" }, video, still);
    fitStage(stage, video);
    fitStage(stage, still);
    addPatrol(stage, video, cameraId);
    const name = h("span", { class: "tile-name" });
    const label = h("span", { class: "tile-label", "data-testid": "tile-label" });
    const status = h("span", { class: "tile-status", "data-testid": "tile-status" });
    const dismiss = h("button", { type: "button", class: "tile-dismiss", "data-testid": "tile-dismiss", hidden: true }, t("wall.video.dismiss"));
    const el = h("div", { class: "video-tile", dataset: { cameraId }, tabindex: "0" },
      h("div", { class: "tile-box" }, stage, noPicture, reasonEl),
      h("div", { class: "tile-bar" }, name, label, status, dismiss));
    let pin = null;
    let overlay = null;
    let liveState = "starting";
    // The pin's alert when the wall still holds it (the feed keeps the latest 60), else the camera.
    const open = () => (pin?.alertId && this.state.alerts.has(pin.alertId) ? this.openAlert(pin.alertId, el) : this.openCamera(cameraId, el));
    el.addEventListener("click", (e) => {
      if (!e.target.closest("button")) open();
    });
    el.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && e.target === el) {
        e.preventDefault();
        open();
      }
    });
    dismiss.addEventListener("click", () => this.dismiss(cameraId));

    const drawZones = async () => {
      overlay?.remove();
      overlay = null;
      if (!pin) return;
      const mine = pin;
      const zones = await zonesOf(cameraId, mine.zoneId);
      if (pin !== mine) return;
      overlay = zoneOverlay({ zones: zones.filter((z) => !mine.zoneId || z.id === mine.zoneId), zoneId: mine.zoneId });
      stage.append(overlay);
    };
    // Where live is unavailable: the camera's latest evidence (the pin's, else its latest alert's,
    // else the frame its edge last sent) and why there is no live picture.
    const showFallback = async (reason, detail) => {
      el.dataset.live = reason;
      status.textContent = liveWord(reason);
      // The center's detail (which edge, which limit) is its English: a tooltip, not the text.
      reasonEl.textContent = liveWord(reason);
      reasonEl.title = detail ?? "";
      reasonEl.hidden = false;
      let url = pin?.snapshotUrl ?? null;
      if (!url) url = (await latestAlert(cameraId).catch(() => null))?.snapshot_url ?? null;
      if (!url) {
        const cam = (await cameraSetup()).get(cameraId);
        if (cam?.frame_url) url = `${cam.frame_url}?t=${encodeURIComponent(cam.frame_at)}`;
      }
      if (el.dataset.live !== reason) return; // live came back meanwhile
      noPicture.hidden = !!url;
      still.hidden = !url;
      if (url && still.dataset.path !== url) {
        still.dataset.path = url;
        signUrl(url).then((signed) => { if (still.dataset.path === url) still.src = signed; }, () => (still.hidden = true));
      }
    };
    const stopLive = playLive(video, cameraId, (state, detail) => {
      liveState = state;
      if (state === "playing" || state === "starting") {
        el.dataset.live = state;
        status.textContent = liveWord(state);
        if (state === "playing") {
          still.hidden = true;
          noPicture.hidden = true;
          reasonEl.hidden = true;
        }
        return;
      }
      showFallback(state, detail);
    });

    return {
      el,
      update: (next) => {
        const changed = next?.alertId !== pin?.alertId || next?.reason !== pin?.reason || !!next !== !!pin;
        pin = next;
        el.dataset.pinned = pin ? "true" : "false";
        el.dataset.reason = pin?.reason ?? "";
        el.classList.toggle("is-pinned", !!pin);
        name.textContent = camera()?.name || cameraId;
        label.textContent = pin
          ? `${pin.reason === "escalated" ? `${t("wall.video.escalated")} · ` : ""}${eventName(pin.eventType, pin.eventName)} · ${fmtTime(pin.at)}`
          : "";
        label.hidden = !pin;
        dismiss.hidden = !pin;
        // Focusable (Enter opens it): a screen reader says which camera and why it is there.
        el.setAttribute("aria-label", [name.textContent, label.textContent].filter(Boolean).join(" · "));
        dismiss.setAttribute("aria-label", `${t("wall.video.dismiss")} · ${name.textContent}`);
        if (changed) {
          drawZones();
          if (liveState !== "playing" && liveState !== "starting") showFallback(liveState);
        }
      },
      stop: () => {
        stopLive();
        video.removeAttribute("src");
        video.load();
      },
    };
  }
}

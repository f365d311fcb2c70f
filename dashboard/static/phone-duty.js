// Duty check-in / check-out on the worker's phone, and sharing its position while on duty
// (docs/presence.md). The bar under the header always says whether the position is being
// shared: a pulsing pin and the time of the last fix the center took, or "not shared". Off
// duty the phone does not watch the position at all: check-out clears the watch before it
// tells the center, and a position the center refuses as off duty (checked out elsewhere)
// stops the watch too. Positions are never queued offline: a late position says nothing.
import { h } from "./dom.js";
import { showError } from "./errors.js";
import { API, ApiError, getJSON, postJSON } from "./http.js";
import { t } from "./i18n.js";
import "./phone-words.js";

const GEO_OPTIONS = { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 };
// How often a phone on duty asks for a fix besides the watch's (well inside the wall's 120 s
// before a position looks stale).
const REFRESH_MS = 30000;
const SEND_MARGIN_MS = 250;

export class DutyBar {
  constructor(el) {
    this.el = el;
    this.onDuty = false;
    this.since = null;
    this.watchId = null;
    this.lastSent = 0; // ms of the last position sent
    this.latest = null; // the newest fix, sent when the interval is over
    this.pendingTimer = null;
    this.refreshTimer = null;
    this.lastStored = null; // Date of the last position the center stored
    this.minIntervalMs = 5000;
    this.problem = "";
    this.busy = false;
    this.button = h("button", { type: "button", class: "duty-button", dataset: { testid: "duty-button" }, onclick: () => this.toggle() });
    this.status = h("span", { class: "duty-status", role: "status", dataset: { testid: "duty-status" } });
    el.replaceChildren(h("span", { class: "duty-pin", "aria-hidden": "true" }), this.status, this.button);
    this.render();
  }

  async load() {
    try {
      this.apply(await getJSON(`${API}/presence/duty`));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 0) showError(err, { what: t("duty.failed"), key: "duty" });
    }
  }

  apply(state) {
    this.onDuty = Boolean(state.on_duty);
    this.since = state.since;
    if (state.min_interval_s) this.minIntervalMs = state.min_interval_s * 1000;
    if (this.onDuty) this.watch();
    else this.unwatch();
    this.render();
  }

  async toggle() {
    if (this.busy) return;
    this.busy = true;
    this.render();
    const on = !this.onDuty;
    // Stop sharing before the center hears of the check-out, never after.
    if (!on) this.unwatch();
    try {
      this.apply(await postJSON(`${API}/presence/duty`, { on_duty: on }));
    } catch (err) {
      showError(err, { what: t("duty.failed"), key: "duty" });
      if (this.onDuty) this.watch(); // still on duty: go on sharing
    } finally {
      this.busy = false;
      this.render();
    }
  }

  watch() {
    if (this.watchId !== null) return;
    if (!("geolocation" in navigator)) {
      this.problem = t("duty.no_geo");
      return;
    }
    const failed = (err) => {
      this.problem = err.code === err.PERMISSION_DENIED ? t("duty.denied") : t("duty.no_fix");
      this.render();
    };
    this.watchId = navigator.geolocation.watchPosition((pos) => this.send(pos), failed, GEO_OPTIONS);
    // A worker standing still gets no new fix from the watch: ask now and then, so that their
    // position does not turn stale on the wall while they are on duty.
    this.refreshTimer = setInterval(() => {
      navigator.geolocation.getCurrentPosition((pos) => this.send(pos), failed, GEO_OPTIONS);
    }, REFRESH_MS);
  }

  unwatch() {
    if (this.watchId !== null) navigator.geolocation.clearWatch(this.watchId);
    clearInterval(this.refreshTimer);
    clearTimeout(this.pendingTimer);
    this.watchId = null;
    this.refreshTimer = null;
    this.pendingTimer = null;
    this.latest = null;
    this.problem = "";
  }

  /** A fix from the watch: sent now, or (sooner than the center would store it) kept and sent
   * when the interval is over, so the last place a phone moved to always reaches the wall. */
  send(pos) {
    if (!this.onDuty || this.watchId === null) return;
    this.latest = pos;
    // A little past the interval: the center measures it between arrivals, not sends.
    const wait = this.lastSent + this.minIntervalMs + SEND_MARGIN_MS - Date.now();
    if (wait > 0) {
      if (!this.pendingTimer) this.pendingTimer = setTimeout(() => {
        this.pendingTimer = null;
        this.send(this.latest);
      }, wait);
      return;
    }
    this.post(pos);
  }

  async post(pos) {
    this.lastSent = Date.now();
    const { longitude: lon, latitude: lat, accuracy } = pos.coords;
    try {
      const r = await postJSON(`${API}/presence/positions`, { lon, lat, accuracy_m: accuracy ?? null });
      if (r.outcome === "stored") this.lastStored = new Date();
      this.problem = "";
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        this.unwatch(); // off duty on the center (checked out on another device)
        this.onDuty = false;
      } else {
        this.problem = err instanceof ApiError && err.status === 0 ? t("duty.offline") : err.message;
      }
    }
    this.render();
  }

  render() {
    const sharing = this.onDuty && this.watchId !== null && !this.problem;
    const state = !this.onDuty ? "off" : this.problem ? "problem" : "sharing";
    this.el.dataset.state = state;
    this.el.dataset.sharing = String(sharing);
    this.el.classList.toggle("is-sharing", sharing);
    this.button.textContent = this.onDuty ? t("duty.check_out") : t("duty.check_in");
    this.button.disabled = this.busy;
    let text;
    if (!this.onDuty) text = t("duty.off");
    else if (this.problem) text = `${t("duty.on_not_shared")}: ${this.problem}`;
    else {
      const last = this.lastStored ? ` · ${t("duty.last")} ${this.lastStored.toLocaleTimeString()}` : "";
      text = `${t("duty.sharing")}${last}`;
    }
    this.status.textContent = text;
  }
}

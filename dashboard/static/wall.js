// Wall screen: district map, live alerts, KPIs, cases per hour, grid ranking, open tickets,
// camera health and the emergency switch. State lives in maps that REST fills on load and after
// every websocket (re)connect (on the server's "hello"), and websocket messages keep current.
// An alert, a ticket row, a camera on the map or in the list opens the detail panel
// (wall-detail.js); the video wall (wall-video.js) shows in place of the map and charts.
import * as echarts from "/vendor/echarts/dist/echarts.esm.min.mjs";

import { h } from "./dom.js";
import { clearError, showError } from "./errors.js";
import { ageSeconds, fmtAge, fmtRate, fmtTime, isToday, parseTime } from "./format.js";
import { API, getJSON, putJSON } from "./http.js";
import { applyI18n, LANG, LIST_SEP, otherLangHref, t } from "./i18n.js";
import { LiveSocket, newer, reloadOnSummary, setWsStatus } from "./live-socket.js";
import { ensureLogin } from "./login.js";
import { me } from "./session.js";
import { snapshot } from "./signed-urls.js";
import { cameraStateName, eventName, isOpenTicket, nextState, stateName } from "./vocabulary.js";
import "./staff-words.js";
import { mountAccount } from "./account.js";
import { DistrictMap, rem } from "./wall-map.js";
import { DetailPanel } from "./wall-detail.js";
import { VideoWall } from "./wall-video.js";
import "./wall-words.js";
import { openVerdictDialog, verdictText } from "./verdict.js";
import { renderKpiDetails } from "./wall-kpis.js";
import { mountHotspots } from "./wall-hotspots.js";
import { simulatedBadge } from "./simulated-badge.js";

const ALERT_LIMIT = 50; // what the REST call asks for (the contract's limit)
const FEED_MAX = 60; // alert items kept on screen
const TICKET_LIMIT = 1000; // open tickets: the map and the overdue count need them all
const ALERTING_MS = 15 * 60 * 1000; // a camera "alerts" while it has a live alert this recent
const STATS_REFRESH_MS = 60_000; // indicators, ranking and the hourly chart
const STATS_DEBOUNCE_MS = 2_000; // after ticket changes
const CAMERA_ORDER = { offline: 0, frozen: 1, lagging: 2, unknown: 3, online: 4 };

const state = {
  alerts: new Map(), // alert_id -> latest alert message
  alertDays: new Map(), // alert_id -> started_at date string, for "alerts today"
  alertsCapped: false, // REST returned a full page: today's count is a lower bound
  tickets: new Map(), // id -> ticket (open ones only)
  ticketTouched: new Map(), // id -> ms when a websocket message last changed it
  cameras: new Map(), // id -> camera
  district: null, // GET /district: areas, cameras, emergency scopes
  emergency: new Set(), // active emergency scopes ("district" or grid ids)
  people: [], // staff (operators, admins, leaders, engineers): names in case ledgers
  falseAlarms: new Map(), // camera id -> false alarms today (GET /indicators/false-alarms)
  verdicts: new Map(), // alert id -> the latest verdict pushed ("verdict" messages)
};

const $ = (id) => document.getElementById(id);
const feedEl = $("alert-feed");
const rowsEl = $("ticket-rows");
const cameraListEl = $("camera-list");
const districtMap = new DistrictMap($("map"), {
  onCamera: (id) => detail.openCamera(id, `#camera-list [data-camera-id="${CSS.escape(id)}"]`),
  onCase: (id) => detail.openTicket(id, `#ticket-rows [data-ticket-id="${CSS.escape(id)}"]`),
});
let chart = null;

// --- alerts ----------------------------------------------------------------------------------

function cameraLabel(cameraId) {
  return state.cameras.get(cameraId)?.name || cameraId || "";
}

function alertItem(alert) {
  const thumb = h("div", { class: "thumb" }, snapshot(alert.snapshot_url, eventName(alert.event_type, alert.event_name), "thumb-img"));
  const box = Array.isArray(alert.bbox) && alert.bbox.length === 4 ? alert.bbox.map(Number) : null;
  if (box && alert.snapshot_url && box.every(Number.isFinite)) {
    const [x1, y1, x2, y2] = box.map((v) => Math.min(1, Math.max(0, v)));
    thumb.append(
      h("div", {
        class: "bbox",
        style: { left: `${x1 * 100}%`, top: `${y1 * 100}%`, width: `${(x2 - x1) * 100}%`, height: `${(y2 - y1) * 100}%` },
      }),
    );
  }
  const score = Number.isFinite(Number(alert.score)) ? `${t("alert.score")} ${Math.round(Number(alert.score) * 100)}%` : null;
  return h(
    "li",
    {
      class: `alert-item kind-${alert.kind || "new"}`,
      tabindex: "0",
      dataset: { alertId: alert.alert_id, eventType: alert.event_type || "", kind: alert.kind || "", seq: alert.seq ?? "" },
    },
    thumb,
    h(
      "div",
      { class: "alert-body" },
      h(
        "div",
        { class: "alert-title" },
        h("span", { class: `etype etype-${alert.event_type}` }, alert.event_type || ""),
        h("span", { class: "alert-name" }, eventName(alert.event_type, alert.event_name)),
        simulatedBadge(alert),
      ),
      // The camera's name says where; a zone has an id only (the engineer view's word), so it
      // stays out of the text and in the tooltip.
      h("div", { class: "alert-camera", title: alert.zone_id ? `${alert.camera_id} · ${alert.zone_id}` : alert.camera_id }, cameraLabel(alert.camera_id)),
      h(
        "div",
        { class: "alert-meta" },
        h("time", { class: "alert-time", datetime: alert.started_at || alert.received_at || "" }, fmtTime(alert.started_at || alert.received_at)),
        score ? h("span", { class: "alert-score" }, score) : null,
        alert.ticket_id != null ? h("span", { class: "alert-ticket" }, `${t("alert.ticket")} #${alert.ticket_id}`) : null,
        alert.kind === "end" ? h("span", { class: "alert-ended" }, t("alert.ended")) : null,
      ),
      verdictControl(alert),
    ),
  );
}

/** The alert's verdict, and a button to give one (not for engineers: they only read). */
function verdictControl(alert) {
  const current = state.verdicts.get(alert.alert_id);
  const mark = current ? h("span", { class: `alert-verdict verdict-${current.verdict}`, "data-testid": "alert-verdict" }, verdictText(current)) : null;
  if (me?.role === "engineer") return mark;
  const open = () => {
    const ticket = alert.ticket_id != null ? state.tickets.get(String(alert.ticket_id)) : null;
    openVerdictDialog({ alertId: alert.alert_id, canVoid: !!ticket && isVoidable(ticket), current }, `${eventName(alert.event_type, alert.event_name)} · ${cameraLabel(alert.camera_id)}`);
  };
  return h("div", { class: "alert-verdict-row" }, mark, h("button", { type: "button", class: "alert-judge", "data-testid": "alert-judge", onclick: open }, t("verdict.title")));
}

/** The state machine lets operators void a case until it is handled (center/tickets/states.py). */
const isVoidable = (ticket) => nextState(ticket.state, "void", "operator") !== null;

function alertSortKey(alert) {
  return parseTime(alert.started_at || alert.received_at)?.getTime() ?? 0;
}

function flash(el, className) {
  el.classList.add(className);
  el.addEventListener("animationend", () => el.classList.remove(className), { once: true });
}

/** Store an alert message; returns "new", "changed" or null when it was stale. */
function storeAlert(alert) {
  if (!alert || !alert.alert_id) return null;
  const prev = state.alerts.get(alert.alert_id);
  if (prev && Number(prev.seq) > Number(alert.seq)) return null;
  state.alerts.set(alert.alert_id, alert);
  const started = parseTime(alert.started_at || alert.received_at);
  if (started) state.alertDays.set(alert.alert_id, started.toDateString());
  if (state.alertDays.size > 5000) state.alertDays.delete(state.alertDays.keys().next().value);
  return prev ? "changed" : "new";
}

function pruneAlerts() {
  if (state.alerts.size <= FEED_MAX) return;
  const sorted = [...state.alerts.values()].sort((a, b) => alertSortKey(b) - alertSortKey(a));
  for (const old of sorted.slice(FEED_MAX)) state.alerts.delete(old.alert_id);
}

function renderFeed() {
  const sorted = [...state.alerts.values()].sort((a, b) => alertSortKey(b) - alertSortKey(a));
  feedEl.replaceChildren(...sorted.map(alertItem));
  $("alert-empty").hidden = sorted.length > 0;
}

function onAlert(alert) {
  const what = storeAlert(alert);
  if (!what) return;
  const el = alertItem(alert);
  const existing = feedEl.querySelector(`.alert-item[data-alert-id="${CSS.escape(alert.alert_id)}"]`);
  if (existing) {
    existing.replaceWith(el);
    if (alert.kind !== "end") flash(el, "is-updated");
  } else {
    // Insert in started_at order (almost always at the top).
    const key = alertSortKey(alert);
    const before = [...feedEl.children].find((li) => alertSortKey(state.alerts.get(li.dataset.alertId) || {}) < key);
    feedEl.insertBefore(el, before || null);
    flash(el, "is-new");
    pruneAlerts();
    for (const li of [...feedEl.children]) if (!state.alerts.has(li.dataset.alertId)) li.remove();
    if (alert.kind !== "end") districtMap.pulse(alert.camera_id);
    if (alert.kind === "new") videoWall.link(linkOfAlert(alert));
  }
  $("alert-empty").hidden = true;
  renderMapCameras();
  renderKpis();
}

/** Cameras with a live (not ended) alert seen in the last minutes. */
function alertingCameras(now = Date.now()) {
  const ids = new Set();
  for (const alert of state.alerts.values()) {
    if (alert.kind === "end") continue;
    const seen = parseTime(alert.last_seen_at || alert.received_at || alert.started_at);
    if (seen && now - seen.getTime() < ALERTING_MS) ids.add(String(alert.camera_id));
  }
  return ids;
}

function renderMapCameras() {
  districtMap.renderCameras([...state.cameras.values()], alertingCameras());
}

// --- tickets ---------------------------------------------------------------------------------

function ageClass(seconds) {
  if (seconds >= 2 * 3600) return "age-over";
  if (seconds >= 30 * 60) return "age-warn";
  return "";
}

function ticketRow(ticket) {
  const age = ageSeconds(ticket.opened_at);
  return h(
    "tr",
    {
      dataset: { ticketId: ticket.id, state: ticket.state, eventType: ticket.event_type || "", overdue: ticket.overdue ? "true" : "false" },
      tabindex: "0",
      class: `state-row-${ticket.state}${ticket.overdue ? " is-overdue" : ""}${isReturned(ticket) ? " is-returned" : ""}`,
    },
    h("td", { class: "id" }, `#${ticket.id}`),
    h(
      "td",
      { class: "type", title: eventName(ticket.event_type, ticket.event_name) },
      h("span", { class: `etype etype-${ticket.event_type}` }, ticket.event_type || ""),
      " ",
      eventName(ticket.event_type, ticket.event_name),
      ticket.alert_count > 1 ? h("span", { class: "alert-count", title: "alerts" }, `×${ticket.alert_count}`) : null,
      simulatedBadge(ticket),
    ),
    h("td", { class: "camera", title: ticket.camera_name || ticket.camera_id || "" }, ticket.camera_name || ticket.camera_id || ""),
    h("td", { class: "grid" }, ticket.micro_grid_name || ticket.micro_grid_id || ""),
    h("td", { class: "assignee" }, ticket.assignee_name || ticket.assignee_id || "—"),
    h("td", { class: "state", dataset: { state: ticket.state } }, h("span", { class: `badge state-${ticket.state}` }, isReturned(ticket) ? t("ticket.returned") : stateName(ticket.state))),
    h("td", { class: `age ${ageClass(age)}`, dataset: { since: ticket.opened_at || "" } }, fmtAge(ticket.opened_at)),
  );
}

/** Sent back by its worker (return keeps dispatched_at): it waits for a leader to re-dispatch. */
const isReturned = (ticket) => ticket.state === "registered" && !!ticket.dispatched_at;

/**
 * Most urgent first, as a dispatch desk's queue: overdue, then returned, then by the nearest
 * deadline (stage, else the case's), then newest. The wall shows only the rows that fit, so
 * what the overdue KPI counts must be on top, not below the fold.
 */
function compareTickets(a, b) {
  const rank = (x) => (x.overdue ? 0 : isReturned(x) ? 1 : 2);
  const due = (x) => parseTime(x.stage_due_at || x.due_at)?.getTime() ?? Infinity;
  const opened = (x) => parseTime(x.opened_at)?.getTime() ?? 0;
  return rank(a) - rank(b) || due(a) - due(b) || opened(b) - opened(a) || b.id - a.id;
}

/** Keyed re-render: rows are rebuilt, but only new / changed ones flash. */
function renderTickets(flashIds = new Set()) {
  const sorted = [...state.tickets.values()].sort(compareTickets);
  const rows = sorted.map((ticket) => {
    const row = ticketRow(ticket);
    if (flashIds.has(String(ticket.id))) flash(row, "is-new");
    return row;
  });
  rowsEl.replaceChildren(...rows);
  $("ticket-empty").hidden = rows.length > 0;
  $("ticket-table").classList.toggle("is-empty", rows.length === 0);
  districtMap.setTickets(state.tickets.values());
  renderKpis();
}

function onTicket(ticket) {
  if (!ticket || ticket.id == null) return;
  detail.onTicket(ticket);
  const id = String(ticket.id);
  const prev = state.tickets.get(id);
  const chosen = newer(prev, ticket);
  if (chosen !== ticket) return;
  state.ticketTouched.set(id, Date.now());
  if (!isOpenTicket(ticket)) {
    const row = rowsEl.querySelector(`tr[data-ticket-id="${CSS.escape(id)}"]`);
    state.tickets.delete(id);
    if (row) {
      // Show the final state briefly, then fade out.
      row.querySelector("td.state").replaceChildren(h("span", { class: `badge state-${ticket.state}` }, stateName(ticket.state)));
      row.dataset.state = ticket.state;
      row.classList.add("is-leaving");
      setTimeout(() => {
        if (!state.tickets.has(id)) row.remove();
        $("ticket-empty").hidden = state.tickets.size > 0;
      }, 1200);
    }
    districtMap.setTickets(state.tickets.values());
    renderKpis();
    scheduleStats();
    return;
  }
  state.tickets.set(id, ticket);
  if (prev && Number(ticket.escalation_level) > Number(prev.escalation_level ?? 0)) videoWall.link(linkOfEscalation(ticket));
  const changed = !prev || prev.state !== ticket.state || prev.assignee_id !== ticket.assignee_id;
  renderTickets(changed ? new Set([id]) : new Set());
  if (!prev) scheduleStats();
}

// --- cameras ---------------------------------------------------------------------------------

function cameraItem(camera) {
  const cameraState = camera.state || "unknown";
  return h(
    "li",
    { class: `camera cam-${cameraState}`, dataset: { cameraId: camera.id, state: cameraState }, tabindex: "0" },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "cam-name", title: camera.id }, camera.name || camera.id),
    h("span", { class: "cam-state" }, cameraStateName(cameraState)),
    state.falseAlarms.get(String(camera.id))
      ? h("span", { class: "cam-false-alarms", "data-testid": "cam-false-alarms", title: t("verdict.kpi") }, `${t("verdict.badge")} ${state.falseAlarms.get(String(camera.id))}`)
      : null,
  );
}

function renderCameras(flashId) {
  const sorted = [...state.cameras.values()].sort(
    (a, b) =>
      (CAMERA_ORDER[a.state] ?? 3) - (CAMERA_ORDER[b.state] ?? 3) ||
      String(a.name || a.id).localeCompare(String(b.name || b.id), LANG === "zh" ? "zh-CN" : "en"),
  );
  const items = sorted.map((camera) => {
    const item = cameraItem(camera);
    if (flashId && String(camera.id) === flashId) flash(item, "is-new");
    return item;
  });
  cameraListEl.replaceChildren(...items);
  $("camera-empty").hidden = items.length > 0;
  renderMapCameras();
  renderKpis();
}

function onCamera(camera) {
  if (!camera || camera.id == null) return;
  const id = String(camera.id);
  const prev = state.cameras.get(id);
  const chosen = newer(prev, camera);
  if (chosen !== camera) return;
  state.cameras.set(id, { ...prev, ...camera });
  renderCameras(prev?.state !== camera.state ? id : null);
  // Alert items show camera names; refresh them when a name appears.
  if (!prev || prev.name !== camera.name) renderFeed();
}

// --- KPIs, clock -----------------------------------------------------------------------------

function setKpi(id, value, tone) {
  const tile = $(id);
  const el = tile.querySelector("[data-kpi-value]");
  if (el.textContent !== String(value)) {
    el.textContent = String(value);
    flash(tile, "is-bumped");
  }
  tile.dataset.value = String(value).replace("+", "");
  if (tone !== undefined) tile.dataset.tone = tone;
}

function renderKpis() {
  const tickets = [...state.tickets.values()];
  setKpi("kpi-open-tickets", tickets.length);
  const overdue = tickets.filter((x) => x.overdue).length;
  setKpi("kpi-overdue", overdue, overdue > 0 ? "bad" : "ok");
  const cameras = [...state.cameras.values()];
  const online = cameras.filter((c) => c.state === "online").length;
  setKpi("kpi-cameras", online, cameras.length && online < cameras.length ? "warn" : "ok");
  $("kpi-cameras-total").textContent = String(cameras.length);
  $("alert-count").textContent = state.alerts.size ? String(state.alerts.size) : "";
  $("ticket-count").textContent = String(tickets.length);
  $("camera-count").textContent = cameras.length ? `${online}/${cameras.length}` : "";
}

/** Today's headline figures (GET /indicators/headline); the counts and trends under them: wall-kpis.js. */
function renderIndicators(body) {
  const today = body?.today;
  setKpi("kpi-cases-today", today ? today.registered : 0);
  setKpi("kpi-closure-rate", fmtRate(today?.closure_rate), rateTone(today?.closure_rate));
  setKpi("kpi-on-time-rate", fmtRate(today?.on_time_rate), rateTone(today?.on_time_rate));
  renderKpiDetails(body);
}

/** Today's false alarms (verdicts on today's alerts): the KPI and each camera's badge. */
async function loadFalseAlarms() {
  try {
    const body = await getJSON(`${API}/indicators/false-alarms?period=day`);
    state.falseAlarms = new Map(Object.entries(body.per_camera ?? {}));
    setKpi("kpi-false-alarms", body.false_alarms ?? 0, body.false_alarms ? "warn" : "ok");
    renderCameras();
  } catch (err) {
    console.warn("false alarms load failed", err.message);
  }
}

/** The current verdicts of the alerts in the feed (after a load: pushes keep them current). */
async function loadVerdicts(alertIds) {
  if (!alertIds.length) return;
  try {
    const q = new URLSearchParams(alertIds.map((id) => ["alert_id", id]));
    for (const v of await getJSON(`${API}/verdicts/current?${q}`)) {
      const known = state.verdicts.get(v.alert_id);
      if (!known || parseTime(v.at) >= parseTime(known.at)) state.verdicts.set(v.alert_id, v);
    }
    renderFeed();
  } catch (err) {
    console.warn("verdicts load failed", err.message);
  }
}

function onVerdict(data) {
  for (const id of data?.alert_ids ?? []) state.verdicts.set(id, data);
  renderFeed();
  loadFalseAlarms();
}

function rateTone(rate) {
  if (rate === null || rate === undefined) return "none";
  return rate >= 0.9 ? "ok" : rate >= 0.7 ? "warn" : "bad";
}

function renderRanking(body) {
  const grids = body?.grids ?? [];
  const rows = grids.map((g) =>
    h(
      "tr",
      { dataset: { gridId: g.key ?? "" }, class: g.rank <= 3 && g.due > 0 ? `top top-${g.rank}` : "" },
      h("td", { class: "rank" }, h("span", { class: "rank-badge" }, String(g.rank))),
      h("td", { class: "name", title: g.name || g.key || "" }, g.name || g.key || "—"),
      h("td", { class: `num tone-${rateTone(g.closure_rate)}` }, fmtRate(g.closure_rate)),
      h("td", { class: `num tone-${rateTone(g.on_time_rate)}` }, fmtRate(g.on_time_rate)),
      h("td", { class: "num" }, String(g.due)),
    ),
  );
  $("ranking-rows").replaceChildren(...rows);
  $("ranking-empty").hidden = rows.length > 0;
}

// GB/T 30428 codes in fixed colours (as .etype-* in style.css); others from a palette.
const TYPE_COLORS = { "0506": "#22d3ee", "0504": "#fb923c", "0505": "#facc15", "0501": "#a78bfa", "0507": "#f472b6" };
const PALETTE = ["#60a5fa", "#34d399", "#f87171", "#c084fc", "#fbbf24", "#2dd4bf"];

let lastHourly = null;

function renderHourly(body) {
  lastHourly = body;
  const el = $("hourly-chart");
  if (!chart) chart = echarts.init(el, null, { renderer: "canvas" });
  const r = rem();
  const hours = (body?.hours ?? []).map((x) => {
    const m = /T(\d{2}):/.exec(x);
    return m ? `${m[1]}:00` : x;
  });
  const series = (body?.series ?? []).map((s, i) => ({
    name: `${s.event_type} ${eventName(s.event_type, s.event_name)}`,
    type: "bar",
    stack: "cases",
    barMaxWidth: 1.4 * r,
    emphasis: { focus: "series" },
    itemStyle: { color: TYPE_COLORS[s.event_type] ?? PALETTE[i % PALETTE.length] },
    data: s.counts,
  }));
  const total = (body?.series ?? []).reduce((sum, s) => sum + s.total, 0);
  $("hourly-total").textContent = String(total);
  el.dataset.total = String(total);
  // The legend is HTML above the chart: every type's full name, wrapping onto more lines where
  // the panel is narrow (ECharts' own legend cuts or pages them).
  $("hourly-legend").replaceChildren(...series.map((s) =>
    h("li", { class: "chart-legend-item" }, h("span", { class: "swatch", style: { background: s.itemStyle.color } }), s.name)));
  const text = { color: "#9fb3d1", fontSize: 0.8 * r };
  chart.setOption(
    {
      animation: false,
      grid: { left: 2.2 * r, right: 0.8 * r, top: 0.8 * r, bottom: 1.8 * r },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, textStyle: { fontSize: 0.85 * r } },
      xAxis: {
        type: "category",
        data: hours,
        axisLabel: { ...text, interval: 3 },
        axisLine: { lineStyle: { color: "#1d3760" } },
        axisTick: { show: false },
      },
      yAxis: {
        type: "value",
        minInterval: 1,
        axisLabel: text,
        splitLine: { lineStyle: { color: "rgba(29,55,96,0.6)" } },
      },
      series,
    },
    { notMerge: true },
  );
}

let statsTimer = null;
let statsSeq = 0;

/** Reload the figures that depend on many tickets (after ticket changes, debounced). */
function scheduleStats(delay = STATS_DEBOUNCE_MS) {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(loadStats, delay);
}

async function loadStats() {
  const mine = ++statsSeq;
  clearTimeout(statsTimer);
  statsTimer = setTimeout(loadStats, STATS_REFRESH_MS);
  const [ind, rank, hourly] = await Promise.allSettled([
    getJSON(`${API}/indicators/headline`),
    getJSON(`${API}/rankings/grids?period=month`),
    getJSON(`${API}/indicators/cases-hourly?hours=24`),
  ]);
  if (mine !== statsSeq) return;
  loadFalseAlarms();
  if (ind.status === "fulfilled") renderIndicators(ind.value);
  if (rank.status === "fulfilled") renderRanking(rank.value);
  if (hourly.status === "fulfilled") renderHourly(hourly.value);
  const failed = [ind, rank, hourly].filter((x) => x.status === "rejected");
  if (failed.length) console.warn("stats load failed", failed.map((f) => f.reason?.message));
}

// --- emergency mode --------------------------------------------------------------------------

let armTimer = null;

function renderEmergency() {
  const scopes = [...state.emergency].sort();
  const on = scopes.length > 0;
  const banner = $("emergency-banner");
  banner.hidden = !on;
  const names = scopes.map((s) => (s === "district" ? t("emergency.district") : state.district?.areas?.features?.find((f) => f.properties?.id === s)?.properties?.name || s));
  $("emergency-scope").textContent = names.join(LIST_SEP);
  document.body.classList.toggle("is-emergency", on);
  document.body.dataset.emergency = on ? "on" : "off";
  const button = $("emergency-switch");
  const districtOn = state.emergency.has("district");
  // A re-render (the district arriving, a case changing) keeps an armed switch armed; the
  // district's state changing under it disarms it, so a confirm never does the opposite.
  if (button.dataset.armed === "true" && button.dataset.armedFrom !== String(districtOn)) disarm(button);
  const armed = button.dataset.armed === "true";
  button.textContent = t(armed ? "emergency.confirm" : districtOn ? "emergency.off" : "emergency.on");
  button.dataset.active = districtOn ? "true" : "false";
  districtMap.setEmergency(state.emergency);
}

function disarm(button) {
  clearTimeout(armTimer);
  delete button.dataset.armed;
  delete button.dataset.armedFrom;
}

async function onEmergencySwitch() {
  const button = $("emergency-switch");
  // Two clicks: the first arms the switch for a few seconds (a wall is easy to touch by mistake).
  if (button.dataset.armed !== "true") {
    clearTimeout(armTimer);
    button.dataset.armed = "true";
    button.dataset.armedFrom = String(state.emergency.has("district"));
    button.textContent = t("emergency.confirm");
    armTimer = setTimeout(() => {
      disarm(button);
      renderEmergency();
    }, 4000);
    return;
  }
  disarm(button);
  const active = !state.emergency.has("district");
  button.disabled = true;
  try {
    const body = await putJSON(`${API}/emergency`, { scope: "district", active });
    state.emergency = new Set(body.active);
  } catch (err) {
    showError(err, { what: t("emergency.failed") });
  } finally {
    button.disabled = false;
    renderEmergency();
  }
}

function onEmergency(data) {
  if (!data?.scope) return;
  if (data.active) state.emergency.add(data.scope);
  else state.emergency.delete(data.scope);
  renderEmergency();
}

function tick() {
  const now = new Date();
  $("clock-time").textContent = now.toLocaleTimeString(LANG === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  $("clock-date").textContent = now.toLocaleDateString(LANG === "zh" ? "zh-CN" : "en-GB", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    weekday: "short",
  });
  const nowMs = now.getTime();
  for (const td of rowsEl.querySelectorAll("td.age")) {
    const text = fmtAge(td.dataset.since, nowMs);
    if (td.textContent !== text) td.textContent = text;
    td.className = `age ${ageClass(ageSeconds(td.dataset.since, nowMs))}`;
  }
  // "Alerts today" rolls over at midnight.
  if (now.getSeconds() === 0) renderKpis();
}

// --- loading ---------------------------------------------------------------------------------

let loadSeq = 0;

async function loadAll() {
  const mine = ++loadSeq;
  const startedAt = Date.now();
  loadStats();
  const [alerts, tickets, cameras, district] = await Promise.allSettled([
    getJSON(`${API}/alerts?limit=${ALERT_LIMIT}`),
    getJSON(`${API}/tickets?open=true&limit=${TICKET_LIMIT}`),
    getJSON(`${API}/cameras`),
    getJSON(`${API}/district`),
  ]);
  if (mine !== loadSeq) return; // a newer load superseded this one
  const failures = [alerts, tickets, cameras, district].filter((r) => r.status === "rejected");
  if (failures.length) showError(failures[0].reason, { what: t("load.failed"), key: "load" });
  else clearError("load");

  if (district.status === "fulfilled" && district.value) {
    const first = !state.district;
    state.district = district.value;
    if (first || JSON.stringify(state.district.areas) !== state.areasKey) {
      state.areasKey = JSON.stringify(state.district.areas);
      districtMap.setAreas(state.district.areas);
    }
    districtMap.setCameras(state.district.cameras ?? []);
    videoWall.fillAreas();
    state.emergency = new Set(state.district.emergency ?? []);
    renderEmergency();
  }

  if (cameras.status === "fulfilled" && Array.isArray(cameras.value)) {
    const next = new Map();
    for (const camera of cameras.value) {
      const id = String(camera.id);
      next.set(id, newer(state.cameras.get(id), camera));
    }
    state.cameras = next;
  }

  if (tickets.status === "fulfilled" && Array.isArray(tickets.value)) {
    const next = new Map();
    for (const ticket of tickets.value) {
      const id = String(ticket.id);
      const chosen = newer(state.tickets.get(id), ticket);
      if (isOpenTicket(chosen)) next.set(id, chosen);
    }
    // A websocket message that arrived while the request was in flight may be newer than it.
    for (const [id, ticket] of state.tickets) {
      if (!next.has(id) && (state.ticketTouched.get(id) ?? 0) > startedAt) next.set(id, ticket);
    }
    state.tickets = next;
    renderTickets();
  }

  if (alerts.status === "fulfilled" && Array.isArray(alerts.value)) {
    for (const alert of alerts.value) storeAlert(alert);
    pruneAlerts();
    state.alertsCapped =
      alerts.value.length >= ALERT_LIMIT && alerts.value.every((a) => isToday(a.started_at || a.received_at));
    renderFeed();
    loadVerdicts([...state.alerts.keys()]);
  }
  renderCameras();
  renderKpis();
  videoWall.render();
}

async function loadPeople() {
  try {
    const people = await getJSON(`${API}/people`);
    const staff = new Set(["operator", "admin", "grid_leader", "micro_grid_leader", "engineer"]);
    state.people = people.filter((p) => staff.has(p.role));
  } catch (err) {
    console.warn("could not load people", err.message);
  }
}

// --- wiring ----------------------------------------------------------------------------------

const reloadAfterStorm = reloadOnSummary(() => loadAll());

function onMessage(msg) {
  districtMap.workers.onMessage(msg); // hello, summary, position, duty
  switch (msg.type) {
    case "hello":
      // The server has registered this screen: reload what may have been missed.
      loadAll();
      break;
    case "alert":
      onAlert(msg.data);
      break;
    case "ticket":
      onTicket(msg.data);
      break;
    case "camera_status":
      onCamera(msg.data);
      break;
    case "emergency":
      onEmergency(msg.data);
      break;
    case "verdict":
      onVerdict(msg.data);
      break;
    case "clip":
      detail.onClip(msg.data);
      break;
    case "summary": // a storm folded events away: fetch the lists and counters again
      reloadAfterStorm();
      break;
    default: // "broadcast" (for phones) and anything newer: nothing to do
  }
}

// --- click-through, video wall ----------------------------------------------------------------

/** Person and camera names for the ledger (ledger.js actorName). */
function nameOf(id) {
  return state.people.find((p) => p.id === id)?.name ?? state.cameras.get(String(id))?.name ?? null;
}

const detail = new DetailPanel($("detail"), { state, nameOf });
const videoWall = new VideoWall($("video-wall"), {
  state,
  openCamera: (id, el) => detail.openCamera(id, el),
  openAlert: (id, el) => detail.openAlert(id, el),
});

function linkOfAlert(alert) {
  return {
    cameraId: alert.camera_id, zoneId: alert.zone_id, alertId: alert.alert_id, eventType: alert.event_type,
    eventName: alert.event_name, snapshotUrl: alert.snapshot_url, reason: "alert", at: alert.started_at,
  };
}

function linkOfEscalation(ticket) {
  return {
    cameraId: ticket.camera_id, zoneId: ticket.zone_id, alertId: ticket.last_alert_id, eventType: ticket.event_type,
    eventName: ticket.event_name, snapshotUrl: ticket.snapshot_url, reason: "escalated", at: ticket.updated_at,
  };
}

/**
 * Click (or Enter / Space on the focused item) on an item of `list` opens the panel; the item's
 * own controls (the verdict button) keep their click. `open(item)` is given the item element.
 */
function clickThrough(list, itemSelector, open) {
  const pick = (e) => {
    const item = e.target.closest(itemSelector);
    if (!item || !list.contains(item) || e.target.closest("button, a, input, select")) return null;
    return item;
  };
  list.addEventListener("click", (e) => {
    const item = pick(e);
    if (item) open(item);
  });
  list.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" && e.key !== " ") return;
    const item = pick(e);
    if (!item || e.target !== item) return;
    e.preventDefault();
    open(item);
  });
}

clickThrough(feedEl, ".alert-item", (li) =>
  detail.openAlert(li.dataset.alertId, `#alert-feed [data-alert-id="${CSS.escape(li.dataset.alertId)}"]`));
clickThrough(rowsEl, "tr[data-ticket-id]", (tr) =>
  detail.openTicket(tr.dataset.ticketId, `#ticket-rows [data-ticket-id="${CSS.escape(tr.dataset.ticketId)}"]`));
clickThrough(cameraListEl, "li[data-camera-id]", (li) =>
  detail.openCamera(li.dataset.cameraId, `#camera-list [data-camera-id="${CSS.escape(li.dataset.cameraId)}"]`));

const MODE_KEY = "gridwatch.wall.mode";

/** "map" (the district map and the charts) or "video" (the video wall in their place). */
function setMode(mode) {
  const video = mode === "video";
  document.body.dataset.wallMode = video ? "video" : "map";
  $("video-wall").hidden = !video;
  $("wall-mode").setAttribute("aria-pressed", String(video));
  $("wall-mode").querySelector(".wall-mode-word").textContent = t(video ? "wall.video.mode.map" : "wall.video.mode.video");
  localStorage.setItem(MODE_KEY, video ? "video" : "map");
  videoWall.setActive(video);
}

$("wall-mode").addEventListener("click", () => setMode(document.body.dataset.wallMode === "video" ? "map" : "video"));
// The switch says how many cameras the alerts pulled onto the video wall while the map shows.
document.addEventListener("gridwatch:video-pins", (e) => {
  const count = $("wall-mode-count");
  count.hidden = !e.detail.count;
  count.textContent = String(e.detail.count);
});

applyI18n();
setMode(new URLSearchParams(location.search).get("mode") || localStorage.getItem(MODE_KEY) || "map");
for (const el of document.querySelectorAll("[data-verdict-word]")) el.textContent = t(`verdict.${el.dataset.verdictWord}`);
$("lang-switch").href = otherLangHref();
$("emergency-switch").addEventListener("click", onEmergencySwitch);
// Font sizes and bar widths are in rem: redraw at the new scale, then fit the canvas.
new ResizeObserver(() => {
  if (!chart) return;
  if (lastHourly) renderHourly(lastHourly);
  chart.resize();
}).observe($("hourly-chart"));
tick();
setInterval(tick, 1000);
setInterval(renderMapCameras, 30_000); // "alerting" wears off
setWsStatus(false);
await ensureLogin();
districtMap.start();
mountAccount(); // who is on duty, by name: the emergency switch acts as them (the token)
loadPeople();
loadAll();
const hotspots = mountHotspots(districtMap.map);
new LiveSocket("/ws", { onMessage, onStatus: setWsStatus }).start();

// For browser tests and debugging on site.
window.gridwatchWall = { state, loadAll, loadStats, map: districtMap, detail, video: videoWall, setMode, hotspots };

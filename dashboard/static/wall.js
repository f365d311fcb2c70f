// Wall screen: live alerts, open tickets, camera health. State lives in three maps that REST
// fills on load and on every websocket (re)connect, and websocket messages keep current.
import {
  API,
  LiveSocket,
  ageSeconds,
  applyI18n,
  cameraStateName,
  eventName,
  fmtAge,
  fmtTime,
  getJSON,
  h,
  isOpenTicket,
  isToday,
  newer,
  otherLangHref,
  parseTime,
  snapshot,
  stateName,
  t,
  LANG,
} from "./common.js";

const ALERT_LIMIT = 50; // what the REST call asks for (the contract's limit)
const FEED_MAX = 60; // alert items kept on screen
const TICKET_LIMIT = 100;
const CAMERA_ORDER = { offline: 0, frozen: 1, lagging: 2, unknown: 3, online: 4 };

const state = {
  alerts: new Map(), // alert_id -> latest alert message
  alertDays: new Map(), // alert_id -> started_at date string, for "alerts today"
  alertsCapped: false, // REST returned a full page: today's count is a lower bound
  tickets: new Map(), // id -> ticket (open ones only)
  ticketTouched: new Map(), // id -> ms when a websocket message last changed it
  cameras: new Map(), // id -> camera
};

const $ = (id) => document.getElementById(id);
const feedEl = $("alert-feed");
const rowsEl = $("ticket-rows");
const cameraListEl = $("camera-list");

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
      ),
      h("div", { class: "alert-camera" }, cameraLabel(alert.camera_id), alert.zone_id ? h("span", { class: "zone" }, ` · ${alert.zone_id}`) : null),
      h(
        "div",
        { class: "alert-meta" },
        h("time", { class: "alert-time", datetime: alert.started_at || alert.received_at || "" }, fmtTime(alert.started_at || alert.received_at)),
        score ? h("span", { class: "alert-score" }, score) : null,
        alert.ticket_id != null ? h("span", { class: "alert-ticket" }, `${t("alert.ticket")} #${alert.ticket_id}`) : null,
        alert.kind === "end" ? h("span", { class: "alert-ended" }, t("alert.ended")) : null,
      ),
    ),
  );
}

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
  }
  $("alert-empty").hidden = true;
  renderKpis();
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
    { dataset: { ticketId: ticket.id, state: ticket.state, eventType: ticket.event_type || "" }, class: `state-row-${ticket.state}` },
    h("td", { class: "id" }, `#${ticket.id}`),
    h(
      "td",
      { class: "type", title: eventName(ticket.event_type, ticket.event_name) },
      h("span", { class: `etype etype-${ticket.event_type}` }, ticket.event_type || ""),
      " ",
      eventName(ticket.event_type, ticket.event_name),
      ticket.alert_count > 1 ? h("span", { class: "alert-count", title: "alerts" }, `×${ticket.alert_count}`) : null,
    ),
    h("td", { class: "camera", title: ticket.camera_name || ticket.camera_id || "" }, ticket.camera_name || ticket.camera_id || ""),
    h("td", { class: "grid" }, ticket.micro_grid_name || ticket.micro_grid_id || ""),
    h("td", { class: "assignee" }, ticket.assignee_name || ticket.assignee_id || "—"),
    h("td", { class: "state", dataset: { state: ticket.state } }, h("span", { class: `badge state-${ticket.state}` }, stateName(ticket.state))),
    h("td", { class: `age ${ageClass(age)}`, dataset: { since: ticket.opened_at || "" } }, fmtAge(ticket.opened_at)),
  );
}

function ticketSortKey(ticket) {
  return parseTime(ticket.opened_at)?.getTime() ?? 0;
}

/** Keyed re-render: rows are rebuilt, but only new / changed ones flash. */
function renderTickets(flashIds = new Set()) {
  const sorted = [...state.tickets.values()].sort((a, b) => ticketSortKey(b) - ticketSortKey(a) || b.id - a.id);
  const rows = sorted.map((ticket) => {
    const row = ticketRow(ticket);
    if (flashIds.has(String(ticket.id))) flash(row, "is-new");
    return row;
  });
  rowsEl.replaceChildren(...rows);
  $("ticket-empty").hidden = rows.length > 0;
  $("ticket-table").classList.toggle("is-empty", rows.length === 0);
  renderKpis();
}

function onTicket(ticket) {
  if (!ticket || ticket.id == null) return;
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
    renderKpis();
    return;
  }
  state.tickets.set(id, ticket);
  const changed = !prev || prev.state !== ticket.state || prev.assignee_id !== ticket.assignee_id;
  renderTickets(changed ? new Set([id]) : new Set());
}

// --- cameras ---------------------------------------------------------------------------------

function cameraItem(camera) {
  const cameraState = camera.state || "unknown";
  return h(
    "li",
    { class: `camera cam-${cameraState}`, dataset: { cameraId: camera.id, state: cameraState } },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "cam-name" }, camera.name || camera.id, h("span", { class: "cam-id" }, camera.id)),
    h("span", { class: "cam-state" }, cameraStateName(cameraState)),
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
  const waiting = tickets.filter((x) => x.state === "dispatched").length;
  setKpi("kpi-waiting", waiting, waiting > 0 ? "warn" : "ok");
  const today = new Date().toDateString();
  let alertsToday = 0;
  for (const day of state.alertDays.values()) if (day === today) alertsToday += 1;
  setKpi("kpi-alerts-today", state.alertsCapped ? `${alertsToday}+` : alertsToday);
  const cameras = [...state.cameras.values()];
  const online = cameras.filter((c) => c.state === "online").length;
  setKpi("kpi-cameras", online, cameras.length && online < cameras.length ? "warn" : "ok");
  $("kpi-cameras-total").textContent = String(cameras.length);
  $("alert-count").textContent = state.alerts.size ? String(state.alerts.size) : "";
  $("ticket-count").textContent = String(tickets.length);
  $("camera-count").textContent = cameras.length ? `${online}/${cameras.length}` : "";
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

function showError(message) {
  const banner = $("error-banner");
  banner.textContent = message;
  banner.hidden = !message;
}

let loadSeq = 0;

async function loadAll() {
  const mine = ++loadSeq;
  const startedAt = Date.now();
  const [alerts, tickets, cameras] = await Promise.allSettled([
    getJSON(`${API}/alerts?limit=${ALERT_LIMIT}`),
    getJSON(`${API}/tickets?open=true&limit=${TICKET_LIMIT}`),
    getJSON(`${API}/cameras`),
  ]);
  if (mine !== loadSeq) return; // a newer load superseded this one
  const failures = [alerts, tickets, cameras].filter((r) => r.status === "rejected");
  showError(failures.length ? `${t("load.failed")}: ${failures.map((f) => f.reason?.message || f.reason).join("; ")}` : "");

  if (cameras.status === "fulfilled" && Array.isArray(cameras.value)) {
    const next = new Map();
    for (const camera of cameras.value) {
      const id = String(camera.id);
      next.set(id, newer(state.cameras.get(id), camera));
    }
    state.cameras = next;
    renderCameras();
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
  }
  renderKpis();
}

// --- wiring ----------------------------------------------------------------------------------

function setWsStatus(online) {
  const el = $("ws-status");
  const word = online ? "online" : "offline";
  el.textContent = word;
  el.className = `ws-status ${word}`;
  el.dataset.state = word;
}

function onMessage(msg) {
  switch (msg.type) {
    case "alert":
      onAlert(msg.data);
      break;
    case "ticket":
      onTicket(msg.data);
      break;
    case "camera_status":
      onCamera(msg.data);
      break;
    default: // "hello" and anything newer: nothing to do
  }
}

applyI18n();
$("lang-switch").href = otherLangHref();
tick();
setInterval(tick, 1000);
setWsStatus(false);
loadAll();
new LiveSocket("/ws", { onOpen: loadAll, onMessage, onStatus: setWsStatus }).start();

// For browser tests and debugging on site.
window.gridwatchWall = { state, loadAll };

// Worker phone page: the open tickets dispatched to one micro-grid worker, with the actions the
// ticket's state allows. /phone?worker_id=ID; without worker_id it shows a worker picker.
import {
  API,
  ApiError,
  LANG,
  LiveSocket,
  applyI18n,
  eventName,
  fmtAge,
  fmtDateTime,
  getJSON,
  h,
  isOpenTicket,
  newer,
  otherLangHref,
  parseTime,
  postJSON,
  snapshot,
  stateName,
  t,
} from "./common.js";

const params = new URLSearchParams(location.search);
const workerId = (params.get("worker_id") || "").trim();
const $ = (id) => document.getElementById(id);

const tickets = new Map(); // id -> ticket
const cards = new Map(); // id -> card element
const touched = new Map(); // id -> ms of the last websocket update
let loadedOnce = false;

// --- banners ---------------------------------------------------------------------------------

function showError(message) {
  $("error-text").textContent = message;
  $("error-banner").hidden = !message;
}

let noticeTimer = null;
function showNotice(content, onClick) {
  const banner = $("notice-banner");
  banner.replaceChildren(content);
  banner.hidden = false;
  banner.onclick = onClick || null;
  banner.classList.remove("is-shown");
  void banner.offsetWidth; // restart the slide-in animation
  banner.classList.add("is-shown");
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    banner.hidden = true;
  }, 8000);
}

function vibrate() {
  // Browsers refuse (and log) vibration before the user has touched the page.
  const active = !navigator.userActivation || navigator.userActivation.hasBeenActive;
  if (active && typeof navigator.vibrate === "function") navigator.vibrate([180, 80, 180]);
}

// --- worker picker ---------------------------------------------------------------------------

function withWorker(id) {
  const url = new URL(location.href);
  url.searchParams.set("worker_id", id);
  return url.pathname + url.search;
}

async function showPicker() {
  $("worker-picker").hidden = false;
  let workers;
  try {
    workers = await getJSON(`${API}/workers`);
  } catch (err) {
    showError(`${t("load.failed")}: ${err.message}`);
    return;
  }
  const byGrid = new Map();
  for (const worker of workers) {
    const grid = worker.micro_grid_id || "—";
    if (!byGrid.has(grid)) byGrid.set(grid, []);
    byGrid.get(grid).push(worker);
  }
  const groups = [...byGrid.entries()]
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([grid, list]) =>
      h(
        "div",
        { class: "worker-group", dataset: { microGridId: grid } },
        h("h3", {}, `${t("phone.grid")} ${grid}`),
        list
          .sort((a, b) => String(a.post).localeCompare(String(b.post)))
          .map((w) =>
            h(
              "a",
              { class: "worker", href: withWorker(w.id), dataset: { workerId: w.id } },
              h("span", { class: "worker-name" }, w.name || w.id),
              h("span", { class: `post post-${w.post}` }, t(`post.${w.post}`)),
            ),
          ),
      ),
    );
  $("worker-list").replaceChildren(...groups);
}

// --- ticket cards ----------------------------------------------------------------------------

function actionLabel(action) {
  const label = t(`action.${action}`);
  return label === `action.${action}` ? action : label;
}

function ticketCard(ticket) {
  const name = eventName(ticket.event_type, ticket.event_name);
  const actions = (ticket.allowed_actions || []).map((action) =>
    h("button", { type: "button", class: `action action-${action}`, dataset: { action } }, actionLabel(action)),
  );
  const card = h(
    "article",
    {
      class: `ticket-card state-card-${ticket.state}`,
      dataset: { ticketId: ticket.id, state: ticket.state, version: `${ticket.updated_at}|${ticket.state}` },
    },
    h("div", { class: "card-media" }, snapshot(ticket.snapshot_url, name, "card-img")),
    h(
      "div",
      { class: "card-body" },
      h(
        "div",
        { class: "card-head" },
        h("span", { class: `etype etype-${ticket.event_type}` }, ticket.event_type || ""),
        h("h2", { class: "card-type" }, name),
        h("span", { class: `badge state state-${ticket.state}`, dataset: { state: ticket.state } }, stateName(ticket.state)),
      ),
      h("div", { class: "card-camera" }, ticket.camera_name || ticket.camera_id || ""),
      h(
        "dl",
        { class: "card-facts" },
        h("dt", {}, t("phone.grid")),
        h("dd", {}, ticket.micro_grid_name || ticket.micro_grid_id || "—"),
        h("dt", {}, t("phone.opened")),
        h("dd", {}, fmtDateTime(ticket.opened_at), " ", h("span", { class: "card-age", dataset: { since: ticket.opened_at || "" } }, `(${fmtAge(ticket.opened_at)})`)),
        ticket.alert_count > 1 ? [h("dt", {}, t("phone.alerts")), h("dd", {}, String(ticket.alert_count))] : null,
      ),
      h("div", { class: "card-id" }, `#${ticket.id}`),
      actions.length ? h("div", { class: "card-actions" }, actions) : null,
    ),
  );
  return card;
}

function sortKey(ticket) {
  return parseTime(ticket.opened_at)?.getTime() ?? 0;
}

/** Keyed render in opened_at order; unchanged cards keep their element (and highlight). */
function renderCards() {
  const sorted = [...tickets.values()].sort((a, b) => sortKey(a) - sortKey(b) || a.id - b.id);
  const els = sorted.map((ticket) => {
    const id = String(ticket.id);
    const version = `${ticket.updated_at}|${ticket.state}`;
    let card = cards.get(id);
    if (!card || card.dataset.version !== version) {
      const fresh = ticketCard(ticket);
      if (card?.classList.contains("is-new")) fresh.classList.add("is-new");
      card = fresh;
      cards.set(id, card);
    }
    return card;
  });
  for (const [id, card] of cards) if (!tickets.has(id) && !card.classList.contains("is-leaving")) cards.delete(id);
  const container = $("ticket-cards");
  const leaving = [...container.querySelectorAll(".ticket-card.is-leaving")];
  container.replaceChildren(...els, ...leaving);
  $("cards-empty").hidden = tickets.size > 0;
}

function removeTicket(id) {
  tickets.delete(id);
  const card = cards.get(id);
  cards.delete(id);
  if (card?.isConnected) {
    card.classList.add("is-leaving");
    card.addEventListener("animationend", () => card.remove(), { once: true });
    setTimeout(() => card.remove(), 1000); // in case animations are off
  }
  renderCards();
}

function highlight(id) {
  const card = cards.get(id);
  if (!card) return;
  card.classList.add("is-new");
  setTimeout(() => card.classList.remove("is-new"), 12000);
}

function announce(ticket) {
  const id = String(ticket.id);
  highlight(id);
  vibrate();
  showNotice(
    h(
      "span",
      {},
      h("strong", {}, `${t("phone.new")} #${ticket.id}`),
      ` ${eventName(ticket.event_type, ticket.event_name)} · ${ticket.camera_name || ticket.camera_id || ""}`,
    ),
    () => {
      cards.get(id)?.scrollIntoView({ behavior: "smooth", block: "center" });
      $("notice-banner").hidden = true;
    },
  );
}

/** Apply a ticket (from REST, a websocket message or an action response). */
function upsert(ticket, { fromSocket = false } = {}) {
  if (!ticket || ticket.id == null) return;
  const id = String(ticket.id);
  const prev = tickets.get(id);
  if (newer(prev, ticket) !== ticket) return;
  if (fromSocket) touched.set(id, Date.now());
  const mine = ticket.assignee_id != null && String(ticket.assignee_id) === workerId;
  if (!isOpenTicket(ticket) || !mine) {
    if (prev) removeTicket(id);
    return;
  }
  tickets.set(id, ticket);
  renderCards();
  if (!prev && loadedOnce) announce(ticket);
}

// --- actions ---------------------------------------------------------------------------------

// Actions that need a word from the worker first; null from a prompt means "cancelled".
function actionBody(action) {
  const body = { action, actor_id: workerId };
  if (action === "return") {
    const reason = window.prompt(t("prompt.return"));
    if (reason === null) return null;
    body.note = reason;
  } else if (action === "request_extension") {
    const minutes = Number.parseInt(window.prompt(t("prompt.extension"), "30") ?? "", 10);
    if (!Number.isFinite(minutes) || minutes <= 0) return null;
    body.extension_min = minutes;
  }
  return body;
}

async function doAction(card, action) {
  const id = card.dataset.ticketId;
  const body = actionBody(action);
  if (body === null) return;
  const buttons = card.querySelectorAll("button[data-action]");
  buttons.forEach((b) => (b.disabled = true));
  card.classList.add("is-busy");
  try {
    const updated = await postJSON(`${API}/tickets/${encodeURIComponent(id)}/actions`, body);
    showError("");
    card.classList.remove("is-new");
    upsert(updated);
  } catch (err) {
    const detail = err instanceof ApiError ? err.detail || err.message : String(err);
    showError(`${t("action.failed")}（${actionLabel(action)} #${id}）: ${detail}`);
    // 409/404: somebody else moved the ticket; fetch what is true now.
    if (err instanceof ApiError && (err.status === 409 || err.status === 404)) loadTickets();
  } finally {
    card.classList.remove("is-busy");
    if (card.isConnected) buttons.forEach((b) => (b.disabled = false));
  }
}

function onCardsClick(event) {
  const button = event.target.closest("button[data-action]");
  const card = event.target.closest(".ticket-card");
  if (card) card.classList.remove("is-new");
  if (!button || !card || button.disabled) return;
  doAction(card, button.dataset.action);
}

// --- loading ---------------------------------------------------------------------------------

let loadSeq = 0;
async function loadTickets() {
  const mine = ++loadSeq;
  const startedAt = Date.now();
  let list;
  try {
    list = await getJSON(`${API}/tickets?open=true&assignee_id=${encodeURIComponent(workerId)}&limit=100`);
  } catch (err) {
    if (mine === loadSeq) showError(`${t("load.failed")}: ${err.message}`);
    return;
  }
  if (mine !== loadSeq || !Array.isArray(list)) return;
  const fresh = new Map();
  for (const ticket of list) {
    const id = String(ticket.id);
    const chosen = newer(tickets.get(id), ticket);
    if (isOpenTicket(chosen)) fresh.set(id, chosen);
  }
  for (const [id, ticket] of tickets) {
    if (!fresh.has(id) && (touched.get(id) ?? 0) > startedAt) fresh.set(id, ticket);
  }
  const added = [...fresh.keys()].filter((id) => !tickets.has(id));
  const gone = [...tickets.keys()].filter((id) => !fresh.has(id));
  for (const id of gone) removeTicket(id);
  for (const [id, ticket] of fresh) tickets.set(id, ticket);
  renderCards();
  // Tickets that arrived while the socket was down announce themselves too.
  if (loadedOnce && added.length) {
    for (const id of added) highlight(id);
    announce(fresh.get(added[added.length - 1]));
  }
  loadedOnce = true;
  if ($("error-text").textContent.startsWith(t("load.failed"))) showError("");
}

async function loadWorker() {
  try {
    const workers = await getJSON(`${API}/workers`);
    const me = workers.find((w) => String(w.id) === workerId);
    const info = $("worker-info");
    if (!me) {
      info.replaceChildren(
        h("span", { class: "warn" }, `${t("phone.unknown_worker")}: ${workerId}`),
        h("a", { class: "switch", href: otherWorkerHref() }, t("phone.switch")),
      );
      return;
    }
    info.replaceChildren(
      h("span", { class: "worker-name" }, me.name || me.id),
      h("span", { class: `post post-${me.post}` }, t(`post.${me.post}`)),
      h("span", { class: "worker-grid" }, me.micro_grid_id || ""),
      h("a", { class: "switch", href: otherWorkerHref() }, t("phone.switch")),
    );
    document.title = `${t("phone.title")} · ${me.name || me.id}`;
  } catch {
    $("worker-info").textContent = workerId;
  }
}

function otherWorkerHref() {
  const url = new URL(location.href);
  url.searchParams.delete("worker_id");
  return url.pathname + url.search;
}

function setWsStatus(online) {
  const el = $("ws-status");
  const word = online ? "online" : "offline";
  el.textContent = word;
  el.className = `ws-status ${word}`;
  el.dataset.state = word;
}

function refreshAges() {
  for (const el of document.querySelectorAll(".card-age")) el.textContent = `(${fmtAge(el.dataset.since)})`;
}

// --- start -----------------------------------------------------------------------------------

applyI18n();
$("lang-switch").href = otherLangHref();
$("error-close").addEventListener("click", () => showError(""));
document.documentElement.dataset.lang = LANG;

if (!workerId) {
  $("ws-status").hidden = true;
  showPicker();
} else {
  $("my-tickets").hidden = false;
  $("ticket-cards").addEventListener("click", onCardsClick);
  loadWorker();
  loadTickets();
  setInterval(refreshAges, 30000);
  const unread = new Map(); // ticket id -> newest notification id shown but not acknowledged
  const socket = new LiveSocket(`/ws?worker_id=${encodeURIComponent(workerId)}`, {
    onOpen: () => {
      loadTickets();
      sendReadReceipts();
    },
    onStatus: setWsStatus,
    onMessage: (msg) => {
      if (msg.type !== "ticket") return;
      upsert(msg.data, { fromSocket: true });
      // Read receipt once the card is on a visible page (docs/notifications.md).
      if (msg.data?.notification_id != null && tickets.has(String(msg.data.id))) {
        unread.set(String(msg.data.id), Math.max(unread.get(String(msg.data.id)) ?? 0, msg.data.notification_id));
        sendReadReceipts();
      }
    },
  }).start();
  function sendReadReceipts() {
    const ws = socket.ws;
    if (document.visibilityState !== "visible" || !ws || ws.readyState !== WebSocket.OPEN) return;
    for (const [ticketId, notificationId] of unread) {
      ws.send(JSON.stringify({ type: "read", notification_id: notificationId, ticket_id: Number(ticketId) }));
    }
    unread.clear();
  }
  document.addEventListener("visibilitychange", sendReadReceipts);
}

window.gridwatchPhone = { tickets, loadTickets };

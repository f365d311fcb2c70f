// Worker phone page: the open tickets dispatched to one micro-grid worker, with the actions the
// ticket's state allows, soonest deadline first. /phone?worker_id=ID; without worker_id the
// worker remembered on this phone (localStorage), else a worker picker.
// Installable (manifest + /sw.js); actions and photos queue offline (phone-outbox.js) and are
// sent in order when the center can be reached; a detail sheet (phone-detail.js) shows the place.
import { h } from "./dom.js";
import { clearError, showError } from "./errors.js";
import { fmtAge, fmtDateTime, parseTime } from "./format.js";
import { API, ApiError, getJSON, postJSON } from "./http.js";
import { applyI18n, LANG, otherLangHref, t } from "./i18n.js";
import { actionName } from "./ledger.js";
import { LiveSocket, newer, setWsStatus } from "./live-socket.js";
import { ensureLogin, showLogin } from "./login.js";
import { getToken, setToken } from "./session.js";
import { snapshot } from "./signed-urls.js";
import { actionsFor, eventName, isOpenTicket, nextState, stateName } from "./vocabulary.js";
import "./staff-words.js";
import "./phone-words.js";
import { mountAccount } from "./account.js";
import { renderDetail } from "./phone-detail.js";
import { CHANNEL, SYNC_TAG, enqueue, flush, pending as queuedEntries, retoken } from "./phone-outbox.js";
import { countdown, sentBackText, tickCountdowns } from "./phone-format.js";
import { DutyBar } from "./phone-duty.js";
import { showUrge } from "./phone-urge.js";
import { simulatedBadge } from "./simulated-badge.js";

const params = new URLSearchParams(location.search);
const WORKER_KEY = "gridwatch.worker_id";
// The phone is the logged-in person's (a bearer token in localStorage, session.js). ?switch logs
// out; ?worker_id=ID asks for ID's login unless that is who is logged in. Offline, the token and
// the person last logged in on this phone are kept, so the page and its queue still work.
if (params.has("switch")) {
  setToken("");
  localStorage.removeItem(WORKER_KEY);
}
const wanted = (params.get("worker_id") || "").trim();
let person = await ensureLogin();
if (person && wanted && person.id !== wanted) {
  setToken("");
  localStorage.setItem("gridwatch.login.person", wanted);
  person = await showLogin();
}
const workerId = (person?.id || (getToken() ? localStorage.getItem(WORKER_KEY) : "") || "").trim();
if (workerId) localStorage.setItem(WORKER_KEY, workerId);
if (getToken()) retoken(getToken(), workerId); // my actions queued under an older login go with this one
const TICKETS_KEY = `gridwatch.tickets.${workerId}`;
const $ = (id) => document.getElementById(id);

const tickets = new Map(); // id -> ticket
const cards = new Map(); // id -> card element
const touched = new Map(); // id -> ms of the last websocket update
let loadedOnce = false;

// --- banners ---------------------------------------------------------------------------------

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

// Messages that must be read, each until dismissed: emergency broadcasts, and cases that left
// this phone (reassigned to someone else).
function showMessage(kind, content) {
  const item = h(
    "div",
    { class: `message message-${kind}`, dataset: { kind } },
    h("div", { class: "message-body" }, content),
    h("button", { type: "button", class: "banner-close", onclick: () => {
      item.remove();
      $("phone-messages").hidden = !$("phone-messages").children.length;
    } }, t("dismiss")),
  );
  $("phone-messages").prepend(item);
  $("phone-messages").hidden = false;
  return item;
}

function onBroadcast(data) {
  if (!data?.text) return;
  const at = data.at ? fmtDateTime(data.at) : "";
  showMessage("broadcast", [
    h("strong", { class: "message-title" }, t("broadcast.title")),
    h("p", { class: "message-text" }, data.text),
    h("small", {}, [data.from ? `${t("broadcast.from")} ${data.from}` : "", at].filter(Boolean).join(" · ")),
  ]);
  vibrate();
  beep();
  systemNotify(t("broadcast.title"), data.text, `broadcast-${data.at || Date.now()}`);
}

/** The case left this worker: say where it went instead of letting the card just vanish. */
function tellGone(ticket) {
  const name = eventName(ticket.event_type, ticket.event_name);
  const to = ticket.assignee_id ? `${ticket.assignee_name || ticket.assignee_id} (${ticket.assignee_id})` : "";
  const text = to ? t("gone.reassigned", { id: ticket.id, name, to }) : t("gone.nobody", { id: ticket.id, name });
  showMessage("gone", h("span", { dataset: { ticketId: ticket.id } }, text));
}

function vibrate() {
  // Browsers refuse (and log) vibration before the user has touched the page.
  const active = !navigator.userActivation || navigator.userActivation.hasBeenActive;
  if (active && typeof navigator.vibrate === "function") navigator.vibrate([180, 80, 180]);
}

// --- worker picker ---------------------------------------------------------------------------

function withWorker(id) {
  const url = new URL(location.href);
  url.searchParams.delete("switch");
  url.searchParams.set("worker_id", id);
  return url.pathname + url.search;
}

async function showPicker() {
  $("worker-picker").hidden = false;
  let workers;
  try {
    workers = await getJSON(`${API}/workers`);
  } catch (err) {
    showError(err, { what: t("load.failed"), key: "load" });
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

// --- queued actions shown before the center confirms them -----------------------------------

const queued = new Map(); // ticket id -> [actions] waiting in the outbox, oldest first

/** The ticket as it will be once its queued actions are through. */
function shown(ticket) {
  const actions = queued.get(String(ticket.id)) || [];
  let view = ticket;
  // What each queued action does to the ticket (the center's state machine, as a worker), so
  // the next button is there offline.
  for (const action of actions) {
    const state = nextState(view.state, action, "worker");
    if (state === null) continue;
    const moved = state !== view.state;
    view = { ...view, state, allowed_actions: actionsFor(state, "worker").filter((a) => a !== action || !moved) };
  }
  return actions.length ? { ...view, pending_actions: actions } : view;
}

function ticketCard(raw) {
  const ticket = shown(raw);
  const name = eventName(ticket.event_type, ticket.event_name);
  const due = ticket.stage_due_at || ticket.due_at;
  const actions = (ticket.allowed_actions || []).map((action) =>
    h("button", { type: "button", class: `action action-${action}`, dataset: { action } }, actionName(action)),
  );
  const sentBack = sentBackText(ticket);
  const card = h(
    "article",
    {
      class: `ticket-card state-card-${ticket.state}${sentBack ? ` is-sent-back sent-back-${ticket.sent_back.action}` : ""}`,
      dataset: { ticketId: ticket.id, state: ticket.state, version: cardVersion(raw) },
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
        simulatedBadge(ticket),
        h("span", { class: `badge state state-${ticket.state}`, dataset: { state: ticket.state } }, stateName(ticket.state)),
      ),
      sentBack ? h("div", { class: "card-sent-back", "data-testid": "card-sent-back" }, sentBack) : null,
      h("div", { class: "card-camera" }, ticket.camera_name || ticket.camera_id || ticket.description || ""),
      due ? h("div", { class: "card-due", "data-testid": "card-due" }, countdown(due)) : null,
      ticket.pending_actions
        ? h("div", { class: "card-pending", "data-testid": "card-pending" },
          `${t("pending.waiting")}: ${ticket.pending_actions.map(actionName).join(" → ")}`)
        : null,
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
      h("div", { class: "card-actions" }, actions,
        h("button", { type: "button", class: "action action-detail", dataset: { open: "detail" } }, t("detail.open"))),
    ),
  );
  return card;
}

function cardVersion(ticket) {
  return `${ticket.updated_at}|${ticket.state}|${(queued.get(String(ticket.id)) || []).join(",")}`;
}

// Soonest stage deadline first; tickets without one after, oldest first.
function sortKey(ticket) {
  const due = parseTime(ticket.stage_due_at || ticket.due_at)?.getTime();
  return [due ?? Number.MAX_SAFE_INTEGER, parseTime(ticket.opened_at)?.getTime() ?? 0];
}

function byDeadline(a, b) {
  const [da, oa] = sortKey(a);
  const [db, ob] = sortKey(b);
  return da - db || oa - ob || a.id - b.id;
}

/** Keyed render in deadline order; unchanged cards keep their element (and highlight). */
function renderCards() {
  const sorted = [...tickets.values()].sort(byDeadline);
  const els = sorted.map((ticket) => {
    const id = String(ticket.id);
    const version = cardVersion(ticket);
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
  if (detailId && tickets.has(detailId)) showDetail(detailId, { refresh: true });
  saveTickets();
}

function saveTickets() {
  try {
    localStorage.setItem(TICKETS_KEY, JSON.stringify([...tickets.values()]));
  } catch {
    /* storage full or disabled: offline start shows an empty list */
  }
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

// --- announcing a new ticket: beep, vibration, system notification, highlight ---------------

let audio = null;
function unlockAudio() {
  // Browsers only let a page make sound after a touch: create the context on the first one.
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  audio = audio || new Ctx();
  if (audio.state === "suspended") audio.resume().catch(() => undefined);
}

function beep() {
  if (!audio || audio.state !== "running") return;
  const start = audio.currentTime;
  for (const [offset, freq] of [[0, 880], [0.22, 1175]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.18);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + offset);
    osc.stop(start + offset + 0.2);
  }
}

async function systemNotify(title, body, tag, extra = {}) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus()) return; // the page shows it
  const options = { body, tag, icon: "/static/icons/icon-192.png", ...extra };
  try {
    const reg = await navigator.serviceWorker?.getRegistration();
    if (reg) await reg.showNotification(title, { ...options, data: { url: `/phone?worker_id=${encodeURIComponent(workerId)}` } });
    else new Notification(title, options);
  } catch {
    /* not permitted here */
  }
}

function setupNotifyButton() {
  const button = $("notify-enable");
  if (!button || !("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.textContent = t("notify.enable");
  button.addEventListener("click", async () => {
    unlockAudio();
    await Notification.requestPermission().catch(() => undefined);
    button.hidden = Notification.permission !== "default";
  });
}

function announce(ticket) {
  const id = String(ticket.id);
  const title = `${ticket.sent_back?.action === "rework" ? t("announce.rework") : t("phone.new")} #${ticket.id}`;
  const place = ticket.camera_name || ticket.camera_id || ticket.description || "";
  highlight(id);
  vibrate();
  beep();
  systemNotify(`${title} ${eventName(ticket.event_type, ticket.event_name)}`, place, `ticket-${ticket.id}`);
  document.body.dataset.lastAnnounced = id;
  showNotice(
    h(
      "span",
      {},
      h("strong", {}, title),
      ` ${eventName(ticket.event_type, ticket.event_name)} · ${place}`,
    ),
    () => {
      cards.get(id)?.scrollIntoView({ behavior: "smooth", block: "center" });
      $("notice-banner").hidden = true;
    },
  );
}

/** Why the center sent this phone a ticket (docs/notifications.md): `reason` with
 * notifications running, else this worker's entry in the change's `notify` map. */
const reasonFor = (ticket) => ticket.reason ?? ticket.notify?.[workerId] ?? "";

/** Apply a ticket (from REST, a websocket message or an action response). */
function upsert(ticket, { fromSocket = false } = {}) {
  if (!ticket || ticket.id == null) return;
  const id = String(ticket.id);
  const prev = tickets.get(id);
  if (fromSocket && reasonFor(ticket) === "reassigned away") tellGone(ticket);
  if (fromSocket && reasonFor(ticket) === "urged") {
    showUrge(ticket, { showMessage, beep, systemNotify, eventName, cardOf: (cardId) => cards.get(cardId) });
  }
  if (newer(prev, ticket) !== ticket) return;
  if (fromSocket) touched.set(id, Date.now());
  const mine = ticket.assignee_id != null && String(ticket.assignee_id) === workerId;
  if (!isOpenTicket(ticket) || !mine) {
    if (prev) removeTicket(id);
    return;
  }
  tickets.set(id, ticket);
  renderCards();
  // A ticket the socket brings that this phone has not seen is news, even before the first list
  // load has finished (a superseded load leaves no baseline yet); so is a case sent back to it.
  const reworked = fromSocket && reasonFor(ticket) === "rework";
  if ((!prev && (loadedOnce || fromSocket)) || (prev && reworked)) announce(ticket);
}

// --- actions ---------------------------------------------------------------------------------

// Actions that need a word from the worker first; null from a prompt means "cancelled".
function actionBody(action) {
  const body = { action };
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
  card.classList.remove("is-new");
  await queueAction(id, body);
}

/** Every action goes through the outbox: sent at once when online, later when not. */
async function queueAction(ticketId, body, photos = []) {
  try {
    await enqueue({ ticket_id: Number(ticketId), worker_id: workerId, token: getToken(), body, photos });
  } catch (err) {
    // No IndexedDB, or it cannot hold the photos (private mode on some phones): send now,
    // photos first, exactly as the outbox would.
    const base = `${API}/tickets/${encodeURIComponent(ticketId)}`;
    try {
      const ids = [];
      for (const photo of photos) {
        const form = new FormData();
        form.append("photo", photo, photo.name || "photo.jpg");
        ids.push((await postJSON(`${base}/attachments`, form)).id);
      }
      const sent = ids.length ? { ...body, attachment_ids: ids } : body;
      upsert(await postJSON(`${base}/actions`, sent));
    } catch (err2) {
      showError(err2, { what: `${actionName(body.action)} #${ticketId}` });
      if (err2 instanceof ApiError && [403, 404, 409].includes(err2.status)) loadTickets();
    }
    return;
  }
  await refreshQueued();
  registerSync();
  flushOutbox();
}

async function registerSync() {
  try {
    const reg = await navigator.serviceWorker?.getRegistration();
    await reg?.sync?.register(SYNC_TAG);
  } catch {
    /* no Background Sync: the page flushes on online / reconnect / start */
  }
}

async function refreshQueued() {
  let entries = [];
  try {
    entries = await queuedEntries();
  } catch {
    /* no IndexedDB */
  }
  queued.clear();
  for (const e of entries.sort((a, b) => a.id - b.id)) {
    const id = String(e.ticket_id);
    if (!queued.has(id)) queued.set(id, []);
    queued.get(id).push(e.body.action);
  }
  const badge = $("pending-badge");
  badge.hidden = entries.length === 0;
  badge.dataset.count = String(entries.length);
  badge.textContent = `${entries.length} ${t("pending.badge")}`;
  renderCards();
  return entries.length;
}

function onSent(result) {
  if (result.ok) {
    upsert(result.ticket);
  } else if (result.status === 409) {
    loadTickets(); // it already happened, or the ticket moved on: show what is true now
  } else {
    showError({ status: result.status, detail: result.error }, { what: `${actionName(result.action)} #${result.ticket_id}` });
    loadTickets();
  }
}

let flushing = null;
let retryTimer = null;
async function flushOutbox() {
  if (flushing) return flushing;
  flushing = (async () => {
    try {
      const { results, stalled } = await flush();
      for (const r of results) onSent(r);
      const left = await refreshQueued();
      clearTimeout(retryTimer);
      if (stalled || left) retryTimer = setTimeout(flushOutbox, 10000);
      if (stalled && !navigator.onLine) showNotice(h("span", {}, t("offline.saved")));
    } catch (err) {
      console.warn("outbox flush failed", err);
    } finally {
      flushing = null;
    }
  })();
  return flushing;
}

// --- detail sheet ----------------------------------------------------------------------------

let detailId = null;
function showDetail(id, { refresh = false } = {}) {
  const ticket = tickets.get(String(id));
  const root = $("ticket-detail");
  if (!ticket) return closeDetail();
  if (refresh && root.contains(document.activeElement) && document.activeElement.matches("input, textarea")) return;
  detailId = String(id);
  const view = shown(ticket);
  renderDetail(root, view, {
    pending: view.pending_actions || [],
    onClose: closeDetail,
    onAction: async (action, extra) => {
      const body = { action };
      if (extra.note) body.note = extra.note;
      if (extra.extension_min) body.extension_min = extra.extension_min;
      await queueAction(id, body, extra.photos || []);
      if (action === "resolve" || action === "return") closeDetail();
    },
  });
  document.body.classList.add("detail-open");
  if (!refresh) window.scrollTo(0, 0);
}

function closeDetail() {
  detailId = null;
  const root = $("ticket-detail");
  root.hidden = true;
  root.replaceChildren();
  document.body.classList.remove("detail-open");
}

function onCardsClick(event) {
  unlockAudio();
  const button = event.target.closest("button[data-action]");
  const card = event.target.closest(".ticket-card");
  if (card) card.classList.remove("is-new");
  if (!card) return;
  if (button) {
    if (!button.disabled) doAction(card, button.dataset.action);
    return;
  }
  if (event.target.closest("a")) return;
  showDetail(card.dataset.ticketId);
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
    if (mine === loadSeq) showError(err, { what: t("load.failed"), key: "load" });
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
  clearError("load");
}

async function loadWorker() {
  try {
    let workers;
    try {
      workers = await getJSON(`${API}/workers`);
      localStorage.setItem("gridwatch.workers", JSON.stringify(workers));
    } catch (err) {
      workers = cachedWorkers();
      if (!workers) throw err;
    }
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
      h("span", { class: "worker-grid", title: me.micro_grid_id || "" }, me.micro_grid_name || me.micro_grid_id || ""),
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
  url.searchParams.set("switch", "1");
  return url.pathname + url.search;
}

function cachedWorkers() {
  try {
    return JSON.parse(localStorage.getItem("gridwatch.workers") || "null");
  } catch {
    return null;
  }
}

function refreshAges() {
  for (const el of document.querySelectorAll(".card-age")) el.textContent = `(${fmtAge(el.dataset.since)})`;
}

// --- start -----------------------------------------------------------------------------------

applyI18n();
$("lang-switch").href = otherLangHref();
// Who is logged in, log out, change password; the queue goes on with the new token.
if (getToken()) mountAccount({ compact: true, onToken: (token) => retoken(token, workerId) });
document.documentElement.dataset.lang = LANG;

if (!workerId) {
  $("ws-status").hidden = true;
  showPicker();
} else {
  $("my-tickets").hidden = false;
  $("ticket-cards").addEventListener("click", onCardsClick);
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  setupNotifyButton();
  try {
    // Offline start: what this phone saw last, until the center answers.
    for (const ticket of JSON.parse(localStorage.getItem(TICKETS_KEY) || "[]")) tickets.set(String(ticket.id), ticket);
  } catch {
    /* nothing cached */
  }
  renderCards();
  loadWorker();
  const dutyEl = h("div", { class: "duty-bar", id: "duty-bar", dataset: { testid: "duty-bar" } });
  document.querySelector(".phone-header").after(dutyEl);
  new DutyBar(dutyEl).load();
  loadTickets();
  refreshQueued().then(flushOutbox);
  window.addEventListener("online", flushOutbox);
  try {
    new BroadcastChannel(CHANNEL).onmessage = (event) => {
      if (event.data?.type === "sent") {
        onSent(event.data);
        refreshQueued();
      }
    };
  } catch {
    /* no BroadcastChannel */
  }
  setInterval(refreshAges, 30000);
  setInterval(() => tickCountdowns(), 1000);
  const unread = new Map(); // ticket id -> newest notification id shown but not acknowledged
  const socket = new LiveSocket(`/ws?worker_id=${encodeURIComponent(workerId)}`, {
    onOpen: () => {
      loadTickets();
      sendReadReceipts();
      flushOutbox(); // the center is back: send what waited
    },
    onStatus: setWsStatus,
    onMessage: (msg) => {
      if (msg.type === "broadcast") onBroadcast(msg.data);
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

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module" }).catch((err) => {
    console.warn("service worker not registered", err);
  });
}

window.gridwatchPhone = { tickets, loadTickets, flushOutbox, refreshQueued };

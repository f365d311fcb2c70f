// Leader / operator view: tickets with filters, one ticket's timeline (from the ledger) with its
// photos and the actions the logged-in person may take, the indicators table with CSV export and
// the grid ranking. Live: ticket messages on the websocket refresh the list and the open ticket.
import { h } from "./dom.js";
import { clearError, showError } from "./errors.js";
import { fmtDateTime, fmtRate } from "./format.js";
import { API, getJSON, postJSON } from "./http.js";
import { applyI18n, otherLangHref, t } from "./i18n.js";
import { actionName, actorName, noteText } from "./ledger.js";
import { LiveSocket, setWsStatus } from "./live-socket.js";
import { ensureLogin } from "./login.js";
import { me } from "./session.js";
import { signedHref, signedImg, snapshot } from "./signed-urls.js";
import { EVENT_CODES, eventName, sourceName, STATE_IDS, stateName } from "./vocabulary.js";
import "./staff-words.js";
import { mountAccount } from "./account.js";
import { drawMap } from "./phone-detail.js";
import { verdictBlock } from "./verdict.js";
import { attachLive, liveStateText } from "./live-view.js";
import { renderHeadline } from "./leader-kpis.js";
import { callLink, handoffBlock, mountQueueFilter, pickedDepartment, queueQuery } from "./leader-handoff.js";

const LEVELS = ["district", "grid", "micro_grid", "worker", "department", "event_type"];
const PERIODS = ["day", "week", "month", "quarter"];
const LIST_LIMIT = 500;
// Actions that need a note (why), and those that need a person (picked below the buttons);
// a hand-off's department is picked in its own row (leader-handoff.js).
const NEEDS_NOTE = new Set(["void", "rework", "escalate"]);
const NEEDS_PERSON = ["dispatch", "reassign"];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = {
  district: null,
  people: [],
  workers: [],
  tickets: [],
  selected: params.get("ticket") ? Number(params.get("ticket")) : null,
  detail: null,
};

let noticeTimer = null;
function showNotice(message) {
  const el = $("notice");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (el.hidden = true), 3000);
}

const option = (value, label) => h("option", { value }, label);
const areaName = (id) => state.district?.areas?.features?.find((f) => f.properties?.id === id)?.properties?.name || id || "";

// --- filters -----------------------------------------------------------------------------------

function fillFilters() {
  const all = t("leader.filter.all");
  $("f-state").replaceChildren(option("", all), ...STATE_IDS.map((s) => option(s, stateName(s))));
  const areas = (state.district?.areas?.features ?? []).map((f) => f.properties);
  $("f-grid").replaceChildren(option("", all), ...areas.filter((a) => a.level === "grid").map((a) => option(a.id, a.name || a.id)));
  fillMicro();
  $("f-type").replaceChildren(option("", all), ...EVENT_CODES.map((c) => option(c, `${c} ${eventName(c)}`)));
}

function fillMicro() {
  const grid = $("f-grid").value;
  const keep = $("f-micro").value;
  const micro = (state.district?.areas?.features ?? [])
    .map((f) => f.properties)
    .filter((a) => a.level === "micro_grid" && (!grid || a.parent === grid));
  $("f-micro").replaceChildren(option("", t("leader.filter.all")), ...micro.map((a) => option(a.id, a.name || a.id)));
  if (micro.some((a) => a.id === keep)) $("f-micro").value = keep;
}

function query() {
  const q = new URLSearchParams({ limit: String(LIST_LIMIT) });
  for (const [id, key] of [["f-state", "state"], ["f-grid", "grid_id"], ["f-micro", "micro_grid_id"], ["f-type", "event_type"]]) {
    if ($(id).value) q.set(key, $(id).value);
  }
  if ($("f-open").checked) q.set("open", "true");
  if ($("f-overdue").checked) q.set("overdue", "true");
  queueQuery(q, me);
  return q;
}

// --- ticket list -------------------------------------------------------------------------------

let listSeq = 0;

async function loadList() {
  const mine = ++listSeq;
  try {
    const tickets = await getJSON(`${API}/tickets?${query()}`);
    if (mine !== listSeq) return;
    state.tickets = tickets;
    renderList();
    clearError("load.list");
  } catch (err) {
    if (mine === listSeq) showError(err, { what: t("load.failed"), key: "load.list" });
  }
}

function renderList() {
  const rows = state.tickets.map((x) =>
    h(
      "tr",
      {
        dataset: { ticketId: x.id, state: x.state, eventType: x.event_type, overdue: x.overdue ? "true" : "false" },
        class: `${x.id === state.selected ? "is-selected" : ""}${x.overdue ? " is-overdue" : ""}`,
        tabindex: "0",
        onclick: () => select(x.id),
        onkeydown: (e) => e.key === "Enter" && select(x.id),
      },
      h("td", { class: "id" }, `#${x.id}`),
      h("td", {}, h("span", { class: `etype etype-${x.event_type}` }, x.event_type), " ", eventName(x.event_type, x.event_name)),
      h("td", {}, x.micro_grid_name || x.micro_grid_id || "—"),
      h("td", {}, x.assignee_name || x.assignee_id || x.department_name || "—"),
      h("td", {}, h("span", { class: `badge state-${x.state}` }, stateName(x.state))),
      h("td", { class: "time" }, fmtDateTime(x.opened_at)),
      h("td", { class: "time" }, fmtDateTime(x.due_at), x.overdue ? h("span", { class: "overdue-tag" }, t("leader.overdue")) : null),
    ),
  );
  $("ticket-rows").replaceChildren(...rows);
  $("list-empty").hidden = rows.length > 0;
  $("list-count").textContent = String(rows.length);
}

// --- one ticket ----------------------------------------------------------------------------------

// The ticket's camera live (live-view.js), under its facts. One player for the page: it survives
// the detail's re-renders (moved, not rebuilt) and stops when another camera's ticket is shown.
const live = { cameraId: null, stop: null, video: null, state: null, box: null };

function liveBox() {
  if (!live.box) {
    live.video = h("video", { muted: true, playsinline: true, "data-testid": "leader-live-video" });
    live.state = h("span", { class: "muted", role: "status", "data-testid": "leader-live-state" });
    live.box = h("div", { class: "leader-live" }, live.video, live.state);
  }
  return live.box;
}

function closeLive() {
  if (live.stop) live.stop();
  live.stop = null;
  live.cameraId = null;
}

function toggleLive(cameraId) {
  const same = live.cameraId === cameraId;
  closeLive();
  if (!same) {
    liveBox();
    live.cameraId = cameraId;
    live.stop = attachLive(live.video, cameraId, {
      onState: (st, detail) => { live.state.textContent = liveStateText(st, detail); },
    });
  }
  renderDetail();
}

function cameraFact(x) {
  if (!x.camera_id) return null;
  if (live.cameraId && live.cameraId !== x.camera_id) closeLive();
  return fact(t("wall.col.camera"), [x.camera_name || x.camera_id, " ", h("button", {
    type: "button", class: "link-button", "data-testid": "leader-live-toggle",
    onclick: () => toggleLive(x.camera_id),
  }, t(live.cameraId === x.camera_id ? "live.close" : "live.open"))]);
}

async function select(id) {
  state.selected = id;
  const url = new URL(location.href);
  url.searchParams.set("ticket", String(id));
  history.replaceState(null, "", url);
  for (const tr of $("ticket-rows").children) tr.classList.toggle("is-selected", Number(tr.dataset.ticketId) === id);
  showCaseView("detail");
  await loadDetail();
}

/** On a phone the list and a case take turns on the screen (leader.css); a desk shows both. */
function showCaseView(view) {
  document.body.dataset.caseView = view;
  if (view === "detail") window.scrollTo(0, 0);
}

let detailSeq = 0;

async function loadDetail() {
  if (state.selected == null) return;
  const mine = ++detailSeq;
  try {
    // allowed_actions for the logged-in person (the default is the assignee's).
    const q = new URLSearchParams({ as: me.id });
    const [detail, verdicts] = await Promise.all([
      getJSON(`${API}/tickets/${state.selected}?${q}`),
      getJSON(`${API}/verdicts?ticket_id=${state.selected}&current=true`),
    ]);
    if (mine !== detailSeq) return;
    state.detail = { ...detail, verdict: verdicts[0] ?? null };
    renderDetail();
    clearError("load.detail");
  } catch (err) {
    if (mine === detailSeq) showError(err, { what: `${t("load.failed")} #${state.selected}`, key: "load.detail" });
  }
}

function fact(label, value) {
  return value === null || value === undefined || value === "" ? null : h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
}

function renderDetail() {
  const x = state.detail;
  const el = $("ticket-detail");
  if (!x) return;
  el.dataset.ticketId = String(x.id);
  el.dataset.state = x.state;
  el.replaceChildren(...[
    h(
      "header",
      { class: "detail-head" },
      h("h2", {}, `#${x.id} `, h("span", { class: `etype etype-${x.event_type}` }, x.event_type), " ", eventName(x.event_type, x.event_name)),
      h("span", { class: `badge state-${x.state}`, "data-testid": "detail-state" }, stateName(x.state)),
      x.overdue ? h("span", { class: "overdue-tag" }, t("leader.overdue")) : null,
    ),
    h(
      "div",
      { class: "detail-top" },
      snapshot(x.snapshot_url, eventName(x.event_type, x.event_name), "detail-snapshot"),
      h(
        "dl",
        { class: "facts" },
        fact(t("leader.source"), sourceName(x.source)),
        cameraFact(x),
        fact(t("wall.col.grid"), `${x.micro_grid_name || x.micro_grid_id || "—"} (${areaName(x.grid_id) || "—"})`),
        fact(t("wall.col.assignee"), h("span", {}, x.assignee_id ? personName(x.assignee_id) : "—", " ", callLink(x.assignee_phone))),
        fact(t("handoff.department"), x.department_name || x.department_id),
        fact(t("leader.opened"), fmtDateTime(x.opened_at)),
        fact(t("leader.due"), fmtDateTime(x.due_at)),
        fact(t("phone.alerts"), x.alert_count),
        fact(t("leader.description"), x.description),
        fact(t("leader.reporter"), x.reporter && (nameOf(x.reporter) ?? x.reporter)), // a patrol's is a person id,
        fact(t("leader.place"), x.lat != null && x.lon != null ? `${Number(x.lat).toFixed(6)}, ${Number(x.lon).toFixed(6)} (WGS-84)` : null),
        fact(t("leader.sent_back"), sentBack(x)),
        fact("", h("a", { href: x.public_url, target: "_blank", rel: "noopener" }, t("leader.public"))),
      ),
    ),
    live.cameraId === x.camera_id ? liveBox() : null,
    placeMap(x),
    photosBlock(x),
    actionsBlock(x),
    me?.role === "engineer"
      ? null
      : verdictBlock({ ticketId: x.id, canVoid: (x.allowed_actions ?? []).includes("void"), current: x.verdict, onDone: () => Promise.all([loadDetail(), loadList()]) }),
    h("h3", {}, t("leader.timeline")),
    h("ol", { class: "timeline", id: "timeline", "data-testid": "timeline" }, ...(x.events ?? []).map(timelineItem)),
  ].filter(Boolean)); // replaceChildren would write a missing block as the text "null"
}

/** The last return or rework, and why (the camera's note is the center's English). */
function sentBack(x) {
  const back = x.sent_back;
  if (!back) return null;
  const why = String(back.actor_id || "").startsWith("camera:") ? t("leader.camera_again") : back.note;
  return `${actionName(back.action)} · ${personName(back.actor_id)}${why ? ` · ${why}` : ""}`;
}

function placeMap(x) {
  const lat = Number(x.lat);
  const lon = Number(x.lon);
  if (x.lat == null || x.lon == null || !Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  const box = h("div", { class: "detail-map", "data-testid": "detail-map", dataset: { map: "none" } });
  const area = state.district?.areas?.features?.find((f) => f.properties?.id === x.micro_grid_id) ?? null;
  queueMicrotask(() => drawMap(box, lat, lon, area));
  return box;
}

/** Every photo of the case: the resident's or patrol's as filed, and those of its handling. */
function photosBlock(x) {
  const photos = x.photos ?? [];
  if (!photos.length) return null;
  return h(
    "section",
    { class: "detail-photos", "data-testid": "detail-photos" },
    h("h3", {}, t("leader.photos")),
    h("div", { class: "tl-photos" }, ...photos.map((p) =>
      signedHref(h("a", { target: "_blank", rel: "noopener", title: `${personName(p.uploaded_by)} ${fmtDateTime(p.at)}` },
        signedImg(p.url, { alt: "", loading: "lazy" })), p.url))),
  );
}

function timelineItem(e) {
  return h(
    "li",
    { class: `tl tl-${e.action}`, dataset: { action: e.action } },
    h("time", { datetime: e.at }, fmtDateTime(e.at)),
    h(
      "div",
      { class: "tl-body" },
      h(
        "div",
        { class: "tl-title" },
        h("strong", {}, actionName(e.action)),
        e.from_state && e.from_state !== e.to_state ? ` ${stateName(e.from_state)} → ${stateName(e.to_state)}` : "",
        h("span", { class: "tl-actor" }, personName(e.actor_id)),
      ),
      e.note ? h("div", { class: "tl-note" }, noteText(e, nameOf)) : null,
      e.attachments?.length
        ? h("div", { class: "tl-photos" }, ...e.attachments.map((url) => signedHref(h("a", { target: "_blank", rel: "noopener" }, signedImg(url, { alt: "", loading: "lazy" })), url)))
        : null,
      e.alert_id ? signedImg(`${API}/alerts/${e.alert_id}/snapshot.jpg`, { class: "tl-alert", alt: "", loading: "lazy" }) : null,
    ),
  );
}

/** A person's or camera's name for a ledger actor, an assignee, an uploader (never a raw id). */
function nameOf(id) {
  const p = state.people.find((x) => x.id === id);
  return p?.name ?? state.district?.cameras?.find((c) => c.id === id)?.name ?? null;
}

const personName = (id) => actorName(id, nameOf);

function actionsBlock(x) {
  const actions = x.allowed_actions ?? [];
  const note = h("input", { type: "text", id: "action-note", placeholder: t("leader.note"), maxlength: "2000" });
  const buttons = actions
    .filter((a) => !NEEDS_PERSON.includes(a) && a !== "hand_off")
    .map((a) => h("button", { type: "button", class: `act act-${a}`, dataset: { action: a }, onclick: () => act(a) }, actionName(a)));
  const withPerson = NEEDS_PERSON.filter((a) => actions.includes(a));
  let reassign = null;
  if (withPerson.length) {
    // Dispatch goes to the on-duty post by default (as routing would), reassign starts from
    // the current assignee; either can be changed here.
    const preset = withPerson.includes("dispatch") ? x.owner_id : x.assignee_id;
    const select = h("select", { id: "reassign-to", "data-testid": "reassign-to" }, ...assigneeOptions(x, preset));
    reassign = h(
      "div",
      { class: "reassign" },
      h("label", {}, t(withPerson.includes("dispatch") ? "leader.dispatch_to" : "leader.reassign_to"), " ", select),
      ...withPerson.map((a) => h("button", { type: "button", class: `act act-${a}`, dataset: { action: a }, onclick: () => act(a) }, actionName(a))),
    );
  }
  return h(
    "section",
    { class: "actions", "data-testid": "actions" },
    h("h3", {}, t("leader.actions")),
    actions.length ? h("div", { class: "action-row" }, note, ...buttons) : h("p", { class: "muted" }, t("leader.no_actions")),
    reassign,
    handoffBlock(x, state.district?.departments ?? [], act),
  );
}

/** Workers (by micro-grid and post), and the on-duty owner when that is not a worker. */
function assigneeOptions(x, preset) {
  const people = [...state.workers];
  if (x.owner_id && !people.some((w) => w.id === x.owner_id)) {
    const owner = state.people.find((p) => p.id === x.owner_id);
    people.unshift({ id: x.owner_id, name: owner?.name ?? x.owner_id, micro_grid_id: x.micro_grid_id, post: null });
  }
  return people.map((w) =>
    h("option", { value: w.id, selected: w.id === preset }, `${w.name} · ${areaName(w.micro_grid_id)}${w.post ? ` ${t(`post.${w.post}`)}` : ""}${w.id === x.owner_id ? ` · ${t("leader.on_duty")}` : ""}`),
  );
}

async function act(action) {
  const x = state.detail;
  if (!x) return;
  const note = $("action-note")?.value.trim() ?? "";
  const what = `${actionName(action)} #${x.id}`;
  if (NEEDS_NOTE.has(action) && !note) {
    $("action-note").focus();
    showError(t(action === "escalate" ? "handoff.escalate_reason" : "leader.note_needed"), { what });
    return;
  }
  const body = { action, note };
  if (NEEDS_PERSON.includes(action) && $("reassign-to")?.value) body.assignee_id = $("reassign-to").value;
  if (action === "hand_off") body.department_id = pickedDepartment();
  for (const b of document.querySelectorAll("#ticket-detail button.act")) b.disabled = true;
  try {
    await postJSON(`${API}/tickets/${x.id}/actions`, body);
    showNotice(`${what}: ${t("leader.done")}`);
  } catch (err) {
    showError(err, { what });
  }
  await Promise.all([loadDetail(), loadList()]);
}

// --- indicators, ranking -------------------------------------------------------------------------

const IND_COLUMNS = [
  ["name", "col.name"],
  ["registered", "col.registered"],
  ["due", "col.due"],
  ["closed", "col.closed"],
  ["closure_rate", "col.closure_rate", fmtRate],
  ["on_time_rate", "col.on_time_rate", fmtRate],
  ["rework_rate", "col.rework_rate", fmtRate],
  ["close_min", "col.close_min", (v) => (v == null ? "—" : Number(v).toFixed(0))],
  ["satisfaction", "col.satisfaction", (v) => (v == null ? "—" : Number(v).toFixed(2))],
];

function periodQuery(period, date) {
  const q = new URLSearchParams({ period });
  if (date) q.set("date", date);
  return q;
}

async function loadIndicators() {
  const q = periodQuery($("ind-period").value, $("ind-date").value);
  q.set("level", $("ind-level").value);
  signedHref($("ind-csv"), `${API}/indicators?${q}&format=csv`); // a CSV link cannot send a header
  $("ind-head").replaceChildren(...IND_COLUMNS.map(([, key]) => h("th", {}, t(key))));
  try {
    const body = await getJSON(`${API}/indicators?${q}`);
    clearError("load.indicators");
    $("ind-rows").replaceChildren(
      ...body.rows.map((r) =>
        h("tr", { dataset: { key: r.key ?? "" } }, ...IND_COLUMNS.map(([k, , fmt]) => h("td", {}, fmt ? fmt(r[k]) : r[k] ?? (k === "name" ? r.key ?? "—" : "—")))),
      ),
    );
  } catch (err) {
    showError(err, { what: t("load.failed"), key: "load.indicators" });
  }
}

async function loadRanking() {
  const q = periodQuery($("rank-period").value, $("rank-date").value);
  signedHref($("rank-csv"), `${API}/rankings/grids?${q}&format=csv`);
  try {
    const body = await getJSON(`${API}/rankings/grids?${q}`);
    clearError("load.ranking");
    $("rank-rows").replaceChildren(
      ...body.grids.map((g) =>
        h(
          "tr",
          { dataset: { gridId: g.key ?? "" } },
          h("td", {}, String(g.rank)),
          h("td", {}, g.name || g.key || "—"),
          h("td", {}, String(g.registered)),
          h("td", {}, String(g.due)),
          h("td", {}, String(g.closed)),
          h("td", {}, fmtRate(g.closure_rate)),
          h("td", {}, fmtRate(g.on_time_rate)),
          h("td", {}, fmtRate(g.rework_rate)),
          h("td", {}, g.satisfaction == null ? "—" : Number(g.satisfaction).toFixed(2)),
        ),
      ),
    );
  } catch (err) {
    showError(err, { what: t("load.failed"), key: "load.ranking" });
  }
}

// --- tabs, wiring --------------------------------------------------------------------------------

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll(".tab-panel")) panel.hidden = panel.dataset.panel !== name;
  if (name === "indicators") {
    loadIndicators();
    renderHeadline($("headline"), (err) => showError(err, { what: t("load.failed"), key: "load.headline" }));
  }
  if (name === "ranking") loadRanking();
}

async function loadPeople() {
  const [district, people, workers] = await Promise.all([getJSON(`${API}/district`), getJSON(`${API}/people`), getJSON(`${API}/workers`)]);
  state.district = district;
  state.people = people;
  state.workers = workers.sort((a, b) => String(a.micro_grid_id).localeCompare(String(b.micro_grid_id)) || String(a.post).localeCompare(String(b.post)));
  fillFilters();
  mountQueueFilter(me);
}

let reloadTimer = null;
function onMessage(msg) {
  if (msg.type === "hello") {
    loadList();
    loadDetail();
  } else if (msg.type === "ticket") {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(loadList, 300);
    if (msg.data?.id === state.selected) loadDetail();
  } else if (msg.type === "verdict" && msg.data?.ticket_id === state.selected) {
    loadDetail();
  }
}

async function main() {
  applyI18n();
  await ensureLogin();
  mountAccount();
  $("lang-switch").href = otherLangHref();
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("ind-level").replaceChildren(...LEVELS.map((l) => option(l, t(`level.${l}`))));
  $("ind-level").value = "grid";
  for (const id of ["ind-period", "rank-period"]) {
    $(id).replaceChildren(...PERIODS.map((p) => option(p, t(`period.${p}`))));
    $(id).value = "month";
  }
  for (const id of ["ind-level", "ind-period", "ind-date"]) $(id).addEventListener("change", loadIndicators);
  for (const id of ["rank-period", "rank-date"]) $(id).addEventListener("change", loadRanking);
  try {
    await loadPeople();
  } catch (err) {
    showError(err, { what: t("load.failed"), key: "load.people" });
  }
  showCaseView(state.selected == null ? "list" : "detail");
  $("detail-back").addEventListener("click", () => showCaseView("list"));
  $("f-grid").addEventListener("change", fillMicro);
  $("filters").addEventListener("change", loadList);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("filters").addEventListener("reset", () => setTimeout(() => (fillMicro(), loadList())));
  await Promise.all([loadList(), loadDetail()]);
  new LiveSocket("/ws", { onMessage, onStatus: setWsStatus }).start();
}

main();
window.gridwatchLeader = { state, loadList, loadDetail };

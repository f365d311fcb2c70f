// Engineer view (/engineer): each edge with its cameras (status, latest frame) and the cameras the
// district gives it that it does not run yet; the selected camera's frame with its zones drawn;
// draw and edit zone polygons and their rule (type, dwell, classes, minimum score), then save: the
// center validates them with the edge's own config models and pushes the edge's whole config to
// it, which applies it live and reports its config back. This page shows "applied by the edge"
// only once the edge reports exactly the zones pushed, and the camera's recent alerts below, so
// the engineer sees the new zone at work. Camera sources are not edited here (docs/engineer.md).
import { h } from "./dom.js";
import { clearError, showError } from "./errors.js";
import { fmtDateTime } from "./format.js";
import { API, api, getJSON } from "./http.js";
import { applyI18n, LANG, otherLangHref, t } from "./i18n.js";
import { ensureLogin } from "./login.js";
import { attachLive, liveStateText } from "./live-view.js";
import { signedImg, signUrl } from "./signed-urls.js";
import {
  cameraStateName,
  detectorClassName,
  eventName,
  ruleClasses,
  ruleDefaultClasses,
  RULE_TYPE_IDS,
  ruleTypeName,
} from "./vocabulary.js";
import "./staff-words.js";
import "./engineer-words.js";
import { mountAccount } from "./account.js";
import { svgEl as svg } from "./zone-overlay.js";

const $ = (id) => document.getElementById(id);

let edges = [];
let camera = null; // the selected camera view from GET /edges
let zones = []; // working copy of its zones (edge ZoneConfig documents)
let selected = 0;
let drag = null; // {zone, point}
// While a new zone is being drawn every click adds a point, even inside another zone (zones may
// overlap); otherwise a click on another zone selects it.
let drawing = false;
let alertsTimer = null;
const CONFIRM_S = 60;
const ALERTS_EVERY_MS = 5000;
// The list refreshes itself, so an edge started (or a camera added on it) while the page is open
// appears without a reload; the zones being edited are left alone.
const EDGES_EVERY_MS = 15000;

function showStatus(text, state) {
  $("eng-status").textContent = text;
  $("eng-status").hidden = !text;
  $("eng-status").dataset.state = state || "";
}

async function loadEdges(keep = true) {
  try {
    edges = await getJSON(`${API}/edges`);
  } catch (err) {
    showError(err, { what: t("engineer.load_failed"), key: "load" });
    return;
  }
  clearError("load");
  const list = $("camera-list");
  if (!edges.length) {
    list.replaceChildren(h("p", { class: "hint" }, t("engineer.no_edges")));
    return;
  }
  list.replaceChildren(...edges.map((edge) => h("div", { class: "eng-edge", dataset: { edgeId: edge.edge_id } },
    h("h3", {}, `${edge.edge_id} · ${cameraStateName(edge.state)}${edge.config_at ? "" : ` · ${t("engineer.not_reported")}`}`),
    edge.cameras.map((cam) => h("button", {
      type: "button", class: `eng-camera${camera?.id === cam.id ? " is-selected" : ""}`,
      dataset: { cameraId: cam.id }, onclick: () => selectCamera(cam.id),
    }, cam.frame_url ? signedImg(`${cam.frame_url}?t=${encodeURIComponent(cam.frame_at)}`, { alt: "" }) : h("span", { class: "no-frame" }, t("engineer.no_frame")),
    h("span", {}, cam.name || cam.id, h("br"), h("small", { class: "muted", dataset: { status: cam.status } },
      `${cameraStateName(cam.status)} · ${cam.zones.length ? `${cam.zones.length} ${t("engineer.zones_n")}` : t("engineer.no_zones")}`)))),
    (edge.unconfigured || []).map((cam) => h("div", { class: "eng-camera is-unconfigured", title: t("engineer.unconfigured_hint"), dataset: { cameraId: cam.id } },
      h("span", { class: "no-frame" }, "—"),
      h("span", {}, cam.name || cam.id, h("br"), h("small", { class: "muted" }, t("engineer.unconfigured"))))))));
  const wanted = new URLSearchParams(location.search).get("camera");
  const first = edges.find((edge) => edge.cameras.length)?.cameras[0];
  if (!camera && (wanted || first)) selectCamera(wanted || first.id);
  else if (camera && !keep) selectCamera(camera.id);
}

function findCamera(id) {
  // The center lists a camera only under the edge the district gives it to.
  return edges.flatMap((edge) => edge.cameras).find((cam) => cam.id === id) ?? null;
}

// Live view of the selected camera (live-view.js): the toggle opens it, choosing another camera
// closes it.
let stopLive = null;

function closeLive() {
  if (stopLive) stopLive();
  stopLive = null;
  $("live").hidden = true;
  $("live-video").hidden = true;
  $("live-toggle").textContent = t("live.open");
}

function toggleLive() {
  if (stopLive || !camera) {
    closeLive();
    return;
  }
  $("live").hidden = false;
  $("live-video").hidden = false;
  $("live-toggle").textContent = t("live.close");
  stopLive = attachLive($("live-video"), camera.id, {
    onState: (state, detail) => { $("live-state").textContent = liveStateText(state, detail); },
  });
}

function selectCamera(id) {
  const cam = findCamera(id);
  if (!cam) return;
  if (camera?.id !== id) closeLive();
  camera = cam;
  zones = JSON.parse(JSON.stringify(cam.zones || []));
  selected = 0;
  setDrawing(false);
  for (const el of document.querySelectorAll(".eng-camera")) el.classList.toggle("is-selected", el.dataset.cameraId === id);
  $("editor").hidden = false;
  $("editor").dataset.cameraId = id;
  $("camera-title").textContent = `${cam.name || cam.id} (${cam.id} @ ${cam.edge_id})`;
  $("frame-at").textContent = cam.frame_at ? `${t("engineer.frame_at")} ${new Date(cam.frame_at).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", { hour12: false })}` : t("engineer.no_frame");
  const frame = cam.frame_url ? `${cam.frame_url}?t=${encodeURIComponent(cam.frame_at)}` : "";
  $("frame").dataset.path = frame;
  if (!frame) $("frame").removeAttribute("src");
  else signUrl(frame).then((signed) => { if ($("frame").dataset.path === frame) $("frame").src = signed; }, () => {});
  draw();
  clearInterval(alertsTimer);
  loadAlerts();
  alertsTimer = setInterval(loadAlerts, ALERTS_EVERY_MS);
}

// The camera's latest alerts, so the engineer sees what a pushed zone does.
async function loadAlerts() {
  if (!camera) return;
  const id = camera.id;
  let alerts;
  try {
    alerts = await getJSON(`${API}/alerts?camera_id=${encodeURIComponent(id)}&limit=10`);
  } catch {
    return; // the next round tries again; the list keeps what it showed
  }
  if (camera?.id !== id) return;
  $("alert-list").replaceChildren(...(alerts.length ? alerts.map((a) => h("li", { dataset: { zoneId: a.zone_id, kind: a.kind } },
    h("span", { class: "muted" }, fmtDateTime(a.last_seen_at)), " ",
    `${t("engineer.zone")} ${a.zone_id} · ${eventName(a.event_type, a.event_name)} · ${t(`engineer.kind_${a.kind}`)}`))
    : [h("li", { class: "muted" }, t("engineer.no_alerts"))]));
}

// --- drawing ---------------------------------------------------------------------------------

function pointFrom(event) {
  const box = $("overlay").getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  const y = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
  return [Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000];
}

function draw() {
  const overlay = $("overlay");
  const box = overlay.getBoundingClientRect();
  const aspect = box.width && box.height ? box.height / box.width : 0.5625;
  const r = 0.009;
  const children = [];
  zones.forEach((zone, zi) => {
    const pts = (zone.polygon || []).map((p) => p.join(",")).join(" ");
    const poly = svg("polygon", { points: pts, class: `zone-poly${zi === selected ? " is-selected" : ""}`, "data-zone-id": zone.id });
    poly.addEventListener("pointerdown", (e) => {
      if (zi !== selected && !drawing) {
        e.stopPropagation();
        selected = zi;
        draw();
      }
    });
    children.push(poly);
    if (zone.polygon?.length) {
      const [lx, ly] = zone.polygon[0];
      const text = svg("text", { x: lx, y: ly, class: "zone-label" });
      text.textContent = zone.id;
      children.push(text);
    }
    if (zi !== selected) return;
    (zone.polygon || []).forEach(([x, y], pi) => {
      const dot = svg("ellipse", { cx: x, cy: y, rx: r * aspect, ry: r, class: "zone-point", "data-point": pi });
      dot.addEventListener("pointerdown", (e) => {
        e.stopPropagation();
        drag = { zone: zi, point: pi };
        overlay.setPointerCapture(e.pointerId);
      });
      dot.addEventListener("dblclick", (e) => {
        e.stopPropagation();
        zone.polygon.splice(pi, 1);
        draw();
      });
      children.push(dot);
    });
  });
  overlay.replaceChildren(...children);
  renderForms();
}

function onStageDown(event) {
  if (drag || !zones[selected]) return;
  zones[selected].polygon = zones[selected].polygon || [];
  zones[selected].polygon.push(pointFrom(event));
  draw();
}

function onStageMove(event) {
  if (!drag) return;
  zones[drag.zone].polygon[drag.point] = pointFrom(event);
  draw();
}

function onStageUp() {
  drag = null;
}

// --- zone forms ------------------------------------------------------------------------------

function ruleOf(zone) {
  if (!zone.rules?.length) zone.rules = [{ type: "illegal_parking" }];
  return zone.rules[0];
}

function setDrawing(on) {
  drawing = on;
  $("add-zone").textContent = t(on ? "engineer.finish_zone" : "engineer.add_zone");
  $("add-zone").dataset.drawing = on ? "1" : "";
}

function newZone() {
  if (drawing) {
    setDrawing(false);
    return;
  }
  let n = zones.length + 1;
  while (zones.some((z) => z.id === `zone-${n}`)) n += 1;
  zones.push({ id: `zone-${n}`, polygon: [], dwell_s: 30, rules: [{ type: "illegal_parking", classes: { two_wheeler: {} } }] });
  selected = zones.length - 1;
  setDrawing(true);
  draw();
}

function zoneForm(zone, zi) {
  const rule = ruleOf(zone);
  const classes = Object.keys(rule.classes || {}).length ? Object.keys(rule.classes) : ruleDefaultClasses(rule.type);
  const type = h("select", { "data-field": "type" },
    RULE_TYPE_IDS.map((id) => h("option", { value: id, selected: id === rule.type }, ruleTypeName(id))));
  type.addEventListener("change", () => {
    const old = rule.type;
    rule.type = type.value;
    if (!rule.id || rule.id === old) rule.id = rule.type;
    rule.event_type = null; // derived from the type again
    rule.min_objects = null;
    rule.classes = Object.fromEntries(ruleDefaultClasses(rule.type).map((c) => [c, {}]));
    renderForms();
  });
  const id = h("input", { type: "text", value: zone.id, "data-field": "id" });
  id.addEventListener("change", () => {
    zone.id = id.value.trim();
    draw();
  });
  const dwell = h("input", { type: "number", min: 1, step: 1, value: rule.dwell_s ?? zone.dwell_s ?? 30, "data-field": "dwell_s" });
  dwell.addEventListener("change", () => {
    rule.dwell_s = Number(dwell.value);
  });
  const minScore = h("input", { type: "number", min: 0, max: 1, step: 0.05, value: zone.min_score ?? 0.3, "data-field": "min_score" });
  minScore.addEventListener("change", () => {
    zone.min_score = Number(minScore.value);
  });
  const boxes = ruleClasses(rule.type).map((c) => {
    const cb = h("input", { type: "checkbox", value: c, checked: classes.includes(c), "data-class": c });
    cb.addEventListener("change", () => {
      const current = { ...(rule.classes || {}) };
      if (cb.checked) current[c] = current[c] || {};
      else delete current[c];
      rule.classes = current;
    });
    return h("label", {}, cb, detectorClassName(c));
  });
  return h("div", { class: `zone-form${zi === selected ? " is-selected" : ""}`, dataset: { zoneIndex: zi, zoneId: zone.id } },
    h("label", {}, t("engineer.zone_id"), id),
    h("label", {}, t("engineer.rule"), type),
    h("label", {}, t("engineer.dwell"), dwell),
    h("label", {}, t("engineer.min_score"), minScore),
    h("div", {}, t("engineer.classes"), h("div", { class: "classes" }, boxes)),
    h("div", { class: "muted" }, `${(zone.polygon || []).length} ${t("engineer.points")}`),
    h("div", {},
      h("button", { type: "button", onclick: () => { setDrawing(false); selected = zi; draw(); } }, t("engineer.select")), " ",
      h("button", { type: "button", "data-action": "delete", onclick: () => { setDrawing(false); zones.splice(zi, 1); selected = 0; draw(); } }, t("engineer.delete"))));
}

function renderForms() {
  $("zone-forms").replaceChildren(...zones.map(zoneForm));
}

// --- saving ----------------------------------------------------------------------------------

async function save() {
  if (!camera) return;
  setDrawing(false);
  clearError("save");
  let result;
  try {
    result = await api(`${API}/cameras/${encodeURIComponent(camera.id)}/zones`, { method: "PUT", body: { zones } });
  } catch (err) {
    showStatus("");
    showError(err, { what: t("engineer.save_failed"), key: "save" });
    return;
  }
  showStatus(t("engineer.pushed"), "pushed");
  // The edge confirms by reporting its config again, with exactly the zones pushed.
  const pushedAt = Date.parse(result.pushed_at);
  const wanted = canonical(result.zones);
  for (let i = 0; i < CONFIRM_S; i += 1) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const state = await getJSON(`${API}/edges/${encodeURIComponent(result.edge_id)}/config`);
      const cam = state.config.cameras.find((c) => c.id === result.camera_id);
      if (Date.parse(state.updated_at) >= pushedAt && canonical(cam?.zones || []) === wanted) {
        showStatus(t("engineer.applied"), "applied");
        await loadEdges(false);
        return;
      }
    } catch {
      /* keep waiting */
    }
  }
  showStatus("");
  showError(t("engineer.not_confirmed"), { key: "save" });
}

// JSON with sorted keys: the center stores the edge's report as jsonb, which reorders keys.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// --- start -----------------------------------------------------------------------------------

applyI18n();
$("lang-switch").href = otherLangHref();
const overlay = $("overlay");
overlay.addEventListener("pointerdown", onStageDown);
overlay.addEventListener("pointermove", onStageMove);
overlay.addEventListener("pointerup", onStageUp);
$("frame").addEventListener("load", draw);
$("add-zone").addEventListener("click", newZone);
$("save").addEventListener("click", save);
$("reload-frame").addEventListener("click", () => loadEdges(false));
$("live-toggle").addEventListener("click", toggleLive);
window.addEventListener("resize", draw);
await ensureLogin();
mountAccount();
loadEdges();
setInterval(() => loadEdges(), EDGES_EVERY_MS);
window.gridwatchEngineer = { get zones() { return zones; }, loadEdges, selectCamera };

// The phone's ticket detail sheet: snapshot, deadline, a small map of the place with navigation
// links, the actions the ticket allows (resolve with photos from the camera, return with a
// reason), and the ticket's ledger when online. Actions are handed to `onAction`, which queues
// them (phone-outbox.js), so they work without a connection too.
import { h } from "./dom.js";
import { fmtDateTime } from "./format.js";
import { API, getJSON } from "./http.js";
import { t } from "./i18n.js";
import { signedHref, signedImg, snapshot } from "./signed-urls.js";
import { eventName, sourceName, stateName } from "./vocabulary.js";
import "./phone-words.js";
import { actionName } from "./ledger.js";
import { countdown, sentBackText } from "./phone-format.js";
import "./phone-words.js";
import "./staff-words.js";
import { verdictBlock } from "./verdict.js";
import "./live-words.js";

const LEAFLET = "/vendor/leaflet/dist/leaflet-src.esm.js";
const LEAFLET_CSS = "/vendor/leaflet/dist/leaflet.css";
let leaflet = null; // the module once loaded; false when it is not there

async function loadLeaflet() {
  if (leaflet !== null) return leaflet;
  try {
    const mod = await import(LEAFLET);
    if (!document.querySelector(`link[href="${LEAFLET_CSS}"]`)) {
      document.head.append(h("link", { rel: "stylesheet", href: LEAFLET_CSS }));
    }
    leaflet = mod;
  } catch {
    leaflet = false; // not installed (npm step) or offline without a cached copy: text only
  }
  return leaflet;
}

/** Navigation links for a WGS-84 point: the phone's own map app, Amap and Baidu web pages. */
export function navLinks(lat, lon, name) {
  const q = encodeURIComponent(name || "");
  return {
    geo: `geo:${lat},${lon}?q=${lat},${lon}(${q})`,
    amap: `https://uri.amap.com/marker?position=${lon},${lat}&name=${q}&coordinate=wgs84&callnative=1`,
    baidu: `https://api.map.baidu.com/marker?location=${lat},${lon}&title=${q}&content=${q}` +
      `&output=html&coord_type=wgs84&src=gridwatch`,
  };
}

function tilesUrl() {
  return document.querySelector('meta[name="gridwatch-tiles"]')?.content?.trim() || "";
}

/**
 * A small map of a case's place (the phone's detail sheet, the leader's case view): the point,
 * and `area` (a GeoJSON feature, e.g. its micro-grid) for context where no tile server is set.
 */
export async function drawMap(container, lat, lon, area = null) {
  const L = await loadLeaflet();
  if (!L || !container.isConnected) return false;
  // Shown before the map is made: Leaflet measures its container once, and a hidden one is 0×0
  // (the point and outline were then drawn into an empty SVG).
  container.classList.add("has-map");
  const map = L.map(container, { zoomControl: false, attributionControl: false }).setView([lat, lon], 17);
  const tiles = tilesUrl();
  if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
  if (area) {
    const outline = L.geoJSON(area, { style: { color: "#38bdf8", weight: 2, fillOpacity: 0.08 }, interactive: false }).addTo(map);
    map.fitBounds(outline.getBounds().extend([lat, lon]), { padding: [12, 12], maxZoom: 17 });
  }
  L.circle([lat, lon], { radius: 25, color: "#f59e0b", weight: 2, fillOpacity: 0.2 }).addTo(map);
  L.circleMarker([lat, lon], { radius: 7, color: "#fff", weight: 2, fillColor: "#dc2626", fillOpacity: 1 }).addTo(map);
  container.dataset.map = "leaflet";
  if (!tiles) drawBase(map, container);
  return true;
}

/**
 * Under the point, the deployment's map base (docs/map.md, the wall's: the tile server its
 * settings name, else its GeoJSON roads, buildings and places), so the small map reads as a
 * street, not a grey box. Offline or without it, the point and outline stay as they are.
 */
async function drawBase(map, container) {
  try {
    const { loadBase } = await import("./wall-map-base.js");
    const base = await loadBase(map, {
      onCrs: (crs) => {
        map.options.crs = crs; // GCJ-02 tiles: the stored WGS-84 point drawn where they show it
        map.setView(map.getCenter(), map.getZoom(), { reset: true, animate: false });
      },
      fitted: Promise.resolve(), // the view is set already
    });
    container.dataset.base = base.tiles ? "tiles" : base.layers.size ? "layers" : "none";
  } catch (err) {
    container.dataset.base = "failed";
    console.warn("map base not loaded", err.message);
  }
}

function placeSection(ticket) {
  const lat = Number(ticket.lat);
  const lon = Number(ticket.lon);
  if (ticket.lat == null || ticket.lon == null || !Number.isFinite(lat) || !Number.isFinite(lon)) {
    return h("section", { class: "detail-place" }, h("p", { class: "hint" }, t("detail.no_place")));
  }
  const name = ticket.camera_name || ticket.camera_id || `#${ticket.id}`;
  const links = navLinks(lat, lon, name);
  const mapBox = h("div", { class: "detail-map", "data-testid": "detail-map", dataset: { map: "none" } });
  drawMap(mapBox, lat, lon);
  return h(
    "section",
    { class: "detail-place" },
    mapBox,
    h("div", { class: "detail-coords", "data-testid": "detail-coords" }, `${lat.toFixed(6)}, ${lon.toFixed(6)} (WGS-84)`),
    h(
      "div",
      { class: "detail-nav" },
      h("a", { class: "nav-link", href: links.geo, dataset: { nav: "geo" } }, t("detail.nav")),
      h("a", { class: "nav-link", href: links.amap, target: "_blank", rel: "noopener", dataset: { nav: "amap" } }, t("detail.amap")),
      h("a", { class: "nav-link", href: links.baidu, target: "_blank", rel: "noopener", dataset: { nav: "baidu" } }, t("detail.baidu")),
    ),
  );
}

function previews(input, box) {
  box.replaceChildren(
    ...[...input.files].map((file) => {
      const img = h("img", { class: "photo-preview", alt: file.name });
      img.src = URL.createObjectURL(file);
      img.onload = () => URL.revokeObjectURL(img.src);
      return img;
    }),
  );
}

// The controls a worker fills in for a ticket (photos, note, return reason), kept as the same
// elements across redraws: a live update of the ticket redraws the sheet, and a photo the
// camera or file picker hands back must land in an input that is still on the page, not in a
// detached copy that the resolve button no longer reads.
const fields = new Map();

function fieldsOf(ticketId) {
  let f = fields.get(ticketId);
  if (!f) {
    const photos = h("input", {
      type: "file", accept: "image/*", capture: "environment", multiple: true,
      class: "photo-input", "data-testid": "photo-input", id: "photo-input",
    });
    const box = h("div", { class: "photo-previews" });
    photos.addEventListener("change", () => previews(photos, box));
    f = {
      photos,
      previews: box,
      note: h("textarea", { class: "detail-note", rows: 2, placeholder: t("detail.resolve_note"), "data-testid": "resolve-note" }),
      reason: h("textarea", { class: "detail-note", rows: 2, placeholder: t("prompt.return"), "data-testid": "return-reason" }),
    };
    fields.set(ticketId, f);
  }
  return f;
}

function actionsSection(ticket, onAction) {
  const allowed = new Set(ticket.allowed_actions || []);
  const parts = [];
  const simple = ["accept", "arrive"].filter((a) => allowed.has(a));
  if (simple.length) {
    parts.push(
      h("div", { class: "detail-buttons" },
        simple.map((a) => h("button", {
          type: "button", class: `action action-${a}`, dataset: { action: a },
          onclick: () => onAction(a, {}),
        }, t(`action.${a}`)))),
    );
  }
  const f = fieldsOf(ticket.id);
  if (allowed.has("resolve")) {
    parts.push(
      h("div", { class: "detail-form detail-resolve" },
        h("label", { class: "photo-label", for: "photo-input" }, t("detail.photo")),
        f.photos, f.previews, f.note,
        h("button", {
          type: "button", class: "action action-resolve", dataset: { action: "resolve" },
          onclick: () => {
            fields.delete(ticket.id);
            onAction("resolve", { note: f.note.value.trim(), photos: [...f.photos.files] });
          },
        }, t("detail.resolve"))),
    );
  }
  if (allowed.has("return")) {
    const error = h("p", { class: "form-error", hidden: true }, t("detail.reason_needed"));
    parts.push(
      h("div", { class: "detail-form detail-return" },
        f.reason, error,
        h("button", {
          type: "button", class: "action action-return", dataset: { action: "return" },
          onclick: () => {
            const note = f.reason.value.trim();
            error.hidden = !!note;
            if (!note) return;
            fields.delete(ticket.id);
            onAction("return", { note });
          },
        }, t("action.return"))),
    );
  }
  if (allowed.has("request_extension")) {
    const minutes = h("input", { type: "number", min: 1, max: 1440, value: 30, class: "detail-minutes" });
    parts.push(
      h("div", { class: "detail-form detail-extension" },
        minutes, h("span", {}, t("detail.minutes")),
        h("button", {
          type: "button", class: "action action-request_extension", dataset: { action: "request_extension" },
          onclick: () => {
            const n = Number.parseInt(minutes.value, 10);
            if (Number.isFinite(n) && n > 0) onAction("request_extension", { extension_min: n });
          },
        }, t("action.request_extension"))),
    );
  }
  return h("section", { class: "detail-actions", "data-testid": "detail-actions" }, parts);
}

/** What only the full ticket has: the case's photos (the resident's or patrol's, the handling
 * ones), the reporter's contact, and the ledger. */
async function ledgerSection(ticket) {
  const box = h("section", { class: "detail-ledger" });
  try {
    const [full, verdicts] = await Promise.all([
      getJSON(`${API}/tickets/${encodeURIComponent(ticket.id)}`),
      getJSON(`${API}/verdicts?ticket_id=${encodeURIComponent(ticket.id)}&current=true`),
    ]);
    // On site, the worker can say what the camera saw is not there (or is): online only, a
    // verdict is no step of the case that the outbox must keep in order.
    const verdict = verdictBlock({ ticketId: ticket.id, siteCheck: true, current: verdicts[0] ?? null,
      onDone: async () => box.replaceWith(await ledgerSection(ticket)) });
    const photos = (full.photos || []).filter((p) => p.url !== ticket.snapshot_url);
    box.replaceChildren(
      verdict,
      photos.length
        ? [h("h3", {}, t("detail.photos")),
          h("div", { class: "detail-photos", "data-testid": "detail-photos" }, photos.map((p) =>
            signedHref(h("a", { target: "_blank", rel: "noopener" },
              signedImg(p.url, { alt: "", loading: "lazy" })), p.url)))]
        : null,
      full.reporter ? h("p", { class: "detail-reporter" }, `${t("detail.reporter")}: ${full.reporter}`) : null,
      h("h3", {}, t("detail.ledger")),
      h("ol", {}, (full.events || []).map((e) =>
        h("li", {},
          h("span", { class: "ledger-at" }, fmtDateTime(e.at)), " ",
          h("span", { class: "ledger-action" }, actionName(e.action)), " ",
          e.note ? h("span", { class: "ledger-note" }, e.note) : null,
          (e.attachments || []).map((url) => signedHref(h("a", { target: "_blank", class: "ledger-photo" }, "📷"), url))))),
    );
  } catch {
    box.replaceChildren(h("p", { class: "hint" }, t("detail.ledger_offline")));
  }
  return box;
}

// The case's camera live, online only: live-view.js (and hls.js) load on the first press, so the
// sheet works offline without them. One player, kept across re-renders of the same case's sheet.
const live = { cameraId: null, stop: null, box: null, video: null, state: null };

function closeLive() {
  if (live.stop) live.stop();
  live.stop = null;
  live.cameraId = null;
  if (live.box) live.box.hidden = true;
}

async function openLive(cameraId, button) {
  if (!live.box) {
    live.video = h("video", { muted: true, playsinline: true, "data-testid": "phone-live-video" });
    live.state = h("span", { class: "hint", role: "status" });
    live.box = h("div", { class: "detail-live" }, live.video, live.state);
  }
  button.after(live.box);
  live.box.hidden = false;
  live.cameraId = cameraId;
  live.state.textContent = t("live.starting");
  try {
    const { attachLive, liveStateText } = await import("./live-view.js");
    if (live.cameraId !== cameraId) return;
    live.stop = attachLive(live.video, cameraId, {
      onState: (st, detail) => { live.state.textContent = liveStateText(st, detail); },
    });
  } catch {
    live.state.textContent = t("live.error");
    return;
  }
  try { // video patrol: file a case from the frame (phone-patrol.js); the live view works without it
    const { addPhonePatrol } = await import("./phone-patrol.js");
    if (live.cameraId === cameraId) addPhonePatrol(live.box, live.video, cameraId);
  } catch (err) {
    console.warn("video patrol not loaded", err.message);
  }
}

function liveButton(ticket) {
  if (!ticket.camera_id) return null;
  if (live.cameraId && live.cameraId !== ticket.camera_id) closeLive();
  const button = h("button", { type: "button", class: "detail-live-toggle", "data-testid": "phone-live-toggle" },
    t(live.cameraId === ticket.camera_id ? "live.close" : "live.open"));
  button.addEventListener("click", () => {
    if (live.cameraId === ticket.camera_id) {
      closeLive();
      button.textContent = t("live.open");
    } else {
      button.textContent = t("live.close");
      openLive(ticket.camera_id, button);
    }
  });
  return live.cameraId === ticket.camera_id ? [button, live.box] : button;
}

/** Render the sheet for `ticket` into `root`; `pending` lists its queued actions. */
export function renderDetail(root, ticket, { onAction, onClose, pending = [] }) {
  const name = eventName(ticket.event_type, ticket.event_name);
  const due = ticket.stage_due_at || ticket.due_at;
  const sheet = h(
    "div",
    { class: "detail-sheet", dataset: { ticketId: ticket.id, state: ticket.state } },
    h("header", { class: "detail-head" },
      h("button", { type: "button", class: "detail-back", "data-testid": "detail-back", onclick: () => { closeLive(); onClose(); } }, t("detail.back")),
      h("h2", {}, `#${ticket.id} ${name}`),
      h("span", { class: `badge state state-${ticket.state}`, dataset: { state: ticket.state } }, stateName(ticket.state))),
    pending.length
      ? h("p", { class: "detail-pending", "data-testid": "detail-pending" }, `${t("pending.waiting")}: ${pending.map((a) => t(`action.${a}`)).join(" → ")}`)
      : null,
    sentBackText(ticket) ? h("p", { class: "detail-sent-back", "data-testid": "detail-sent-back" }, sentBackText(ticket)) : null,
    h("div", { class: "detail-media" }, snapshot(ticket.snapshot_url, name, "detail-img"), liveButton(ticket)),
    h("dl", { class: "card-facts" },
      h("dt", {}, t("detail.source")), h("dd", {}, sourceName(ticket.source)),
      h("dt", {}, t("detail.camera")), h("dd", {}, ticket.camera_name || ticket.camera_id || "—"),
      h("dt", {}, t("phone.grid")), h("dd", {}, ticket.micro_grid_name || ticket.micro_grid_id || "—"),
      h("dt", {}, t("phone.opened")), h("dd", {}, fmtDateTime(ticket.opened_at)),
      h("dt", {}, t("detail.due")),
      h("dd", {}, due ? [fmtDateTime(due), " ", countdown(due)] : "—"),
      ticket.description ? [h("dt", {}, t("detail.description")), h("dd", {}, ticket.description)] : null),
    placeSection(ticket),
    actionsSection(ticket, onAction),
  );
  root.replaceChildren(sheet);
  root.hidden = false;
  ledgerSection(ticket).then((box) => {
    if (sheet.isConnected) sheet.append(box);
  });
  return sheet;
}

// The residents' report form (/report): type, description, a place picked on the district's
// map (or the phone's location), an optional photo. Places outside the district are refused by
// the center (422, code outside_district) and said so in plain words.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { applyI18n, LANG, otherLangHref, t } from "./i18n.js";
import { EVENT_CODES, eventName } from "./vocabulary.js";
import "./resident-words.js";
import { residentErrorText } from "./resident-errors.js";

const $ = (id) => document.getElementById(id);
const form = $("report");
let districtName = "";

applyI18n();
document.title = `${t("report.title")} · gridwatch`;
$("lang-switch").textContent = LANG === "zh" ? "EN" : "中文";
$("lang-switch").href = otherLangHref();
for (const code of EVENT_CODES) { // the center's table: it accepts any of them from a resident
  const option = document.createElement("option");
  option.value = code;
  option.textContent = `${code} ${eventName(code)}`;
  $("event-type").append(option);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// --- the place: a map of the district's grids (no tile server), the pin, the phone's location

const map = L.map("pick-map", { attributionControl: false, zoomSnap: 0.25 });
map.setView([0, 0], 2);
let pin = null;

function setPlace(lat, lon, { pan = false } = {}) {
  $("lat").value = lat.toFixed(6);
  $("lon").value = lon.toFixed(6);
  if (pin) pin.setLatLng([lat, lon]);
  else pin = L.circleMarker([lat, lon], { radius: 9, color: "#b3261e", weight: 3, fillOpacity: 0.6 }).addTo(map);
  if (pan) map.panTo([lat, lon]);
  showError("");
}

map.on("click", (e) => setPlace(e.latlng.lat, e.latlng.lng));
for (const id of ["lat", "lon"]) {
  $(id).addEventListener("change", () => {
    const lat = Number($("lat").value);
    const lon = Number($("lon").value);
    if ($("lat").value && $("lon").value && Number.isFinite(lat) && Number.isFinite(lon)) setPlace(lat, lon, { pan: true });
  });
}

async function drawDistrict() {
  try {
    const r = await fetch("/api/v1/public/area");
    if (!r.ok) return;
    const area = await r.json();
    districtName = area.name || "";
    const grids = { ...area.areas, features: (area.areas?.features ?? []).filter((f) => f.properties?.level === "grid") };
    const layer = L.geoJSON(grids, { style: () => ({ color: "#1d6fd6", weight: 2, fillColor: "#1d6fd6", fillOpacity: 0.12 }) }).addTo(map);
    // A node, not a string: Leaflet parses a string tooltip as HTML, and names come from the API.
    layer.eachLayer((l) => l.bindTooltip(h("span", {}, l.feature.properties.name || ""), { direction: "center", className: "area-name" }));
    if (grids.features.length) map.fitBounds(layer.getBounds(), { padding: [24, 24] });
  } catch {
    // offline: the coordinates can still be typed
  }
}

function locate() {
  if (!navigator.geolocation) {
    $("where-hint").textContent = t("report.where.denied");
    return;
  }
  navigator.geolocation.getCurrentPosition(
    (p) => setPlace(p.coords.latitude, p.coords.longitude, { pan: true }),
    () => { $("where-hint").textContent = t("report.where.denied"); },
    { timeout: 10000, maximumAge: 60000 },
  );
}

$("locate").addEventListener("click", locate);
drawDistrict().then(locate);

// --- sending -------------------------------------------------------------------------------

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!$("lon").value || !$("lat").value) {
    showError(t("report.where.none"));
    return;
  }
  const data = new FormData(form);
  if (!data.get("photo")?.size) data.delete("photo");
  $("submit").disabled = true;
  $("submit").textContent = t("report.sending");
  let r;
  let body = null;
  try {
    r = await fetch("/api/v1/public/requests", { method: "POST", body: data });
    body = await r.json().catch(() => null);
  } catch {
    showError(t("error.network"));
    return;
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = t("report.submit");
  }
  if (!r.ok) {
    showError(residentErrorText(r.status, body, { district: districtName }));
    return;
  }
  showError("");
  form.hidden = true;
  $("done").hidden = false;
  $("case-number").textContent = `#${body.id}`;
  $("follow").href = LANG === "en" ? `${body.url}?lang=en` : body.url;
});

// What the wall's detail panel and video wall know about one camera beyond its status: its zones
// (as its edge reports running them: GET /edges, the engineer view's source), its latest
// evidence (GET /alerts?camera_id=), and its live view (live-view.js's attachLive).
import { API, getJSON } from "./http.js";
import { t } from "./i18n.js";
import "./live-words.js";
import "./wall-words.js";

const ZONES_TTL_MS = 60_000;
const ZONES_RETRY_MS = 3_000; // an alert naming a zone the copy lacks asks again, at most this often
let zonesAt = 0;
let zonesLoad = null; // Promise<Map camera id -> {zones, frame_url, frame_at}>
let freshLoad = null; // the one re-read waiting for its turn

function readSetup() {
  zonesAt = Date.now();
  zonesLoad = getJSON(`${API}/edges`).then(
    (edges) => new Map(edges.flatMap((edge) => edge.cameras.map((cam) => [String(cam.id), cam]))),
    (err) => {
      console.warn("zones not loaded", err.message);
      zonesAt = 0; // try again next time
      return new Map();
    },
  );
  return zonesLoad;
}

/** The cameras' zones and latest frame URL, from the edges' reports (refreshed each minute). */
export function cameraSetup() {
  return !zonesLoad || Date.now() - zonesAt > ZONES_TTL_MS ? readSetup() : zonesLoad;
}

/** Read the setup again (an alert named a zone the copy lacks), no more often than ZONES_RETRY_MS. */
function freshSetup() {
  freshLoad ??= new Promise((resolve) => {
    setTimeout(() => {
      freshLoad = null;
      resolve(readSetup());
    }, Math.max(0, zonesAt + ZONES_RETRY_MS - Date.now()));
  });
  return freshLoad;
}

/**
 * One camera's zones ([] when its edge has not reported them). `zoneId`: the zone an alert
 * names; when the copy lacks it (an edge reported or an engineer drew it since), ask again.
 */
export async function zonesOf(cameraId, zoneId = null) {
  const zones = (await cameraSetup()).get(String(cameraId))?.zones ?? [];
  if (!zoneId || zones.some((z) => z.id === zoneId)) return zones;
  return (await freshSetup()).get(String(cameraId))?.zones ?? [];
}

/** The camera's latest alert message (its evidence picture, box and zone), or null. */
export async function latestAlert(cameraId) {
  const rows = await getJSON(`${API}/alerts?camera_id=${encodeURIComponent(cameraId)}&limit=1`);
  return rows[0] ?? null;
}

/** An alert's latest message, looked up among its camera's recent ones (there is no GET by id). */
export async function findAlert(alertId, cameraId) {
  if (!alertId || !cameraId) return null;
  const rows = await getJSON(`${API}/alerts?camera_id=${encodeURIComponent(cameraId)}&limit=200`);
  return rows.find((a) => a.alert_id === alertId) ?? null;
}

// live-view.js (the live engineer's module: POST /cameras/{id}/live, hls.js) is loaded when a
// live view is first shown; a center without it (or without hls.js installed) still shows the
// wall, with "live view not enabled" where the video would be.
let liveModule = null;

function loadLive() {
  liveModule ??= import("./live-view.js").catch((err) => {
    console.warn("live view unavailable", err.message);
    return null;
  });
  return liveModule;
}

/** A live state in words: live-view.js's words, and the wall's own for "unavailable". */
export const liveWord = (state) => t(state === "unavailable" ? "wall.live.unavailable" : `live.${state}`);

/**
 * Play `cameraId` live in `video`; `onState(state, detail)` hears "starting", "playing",
 * "offline", "limit", "error" (attachLive's) or "unavailable". Returns a stop function that
 * works at once, even before the module has loaded.
 */
export function playLive(video, cameraId, onState) {
  let stop = null;
  let stopped = false;
  loadLive().then((mod) => {
    if (stopped) return;
    if (!mod?.attachLive) {
      onState("unavailable");
      return;
    }
    try {
      stop = mod.attachLive(video, cameraId, { onState: (s, detail) => !stopped && onState(s, detail) });
    } catch (err) {
      console.warn("live view failed", err);
      onState("error");
    }
  });
  return () => {
    stopped = true;
    stop?.();
  };
}

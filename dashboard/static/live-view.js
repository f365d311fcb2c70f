// Live view of a camera in a <video>, for every page (wall tiles, detail panel, engineer view):
// `attachLive(video, cameraId, {onState}) -> stop()`. It asks the center for the camera's stream
// (POST /cameras/{id}/live), plays the signed HLS playlist it answers with hls.js (from npm,
// /vendor), asks again every few seconds while attached (that is the keep-alive, and it renews
// the playlist's signed URL), and reports states through onState(state, detail):
// "starting", "playing", "offline" (the camera or its edge; detail says why), "limit" (viewers
// per camera or streams per edge) and "error". Offline and limit are retried while attached.
// stop() lets go: the center stops a stream nobody asks for (docs/video.md "Live view").
import Hls from "/vendor/hls.js/dist/hls.min.mjs";
import { API, ApiError, postJSON } from "./http.js";
import { t } from "./i18n.js";
import "./live-words.js";

const KEEPALIVE_MS = 8000;
const STARTING_POLL_MS = 1000;
const RETRY_MS = 10000;

/** A state's words for a page, with the center's reason when there is one. */
export function liveStateText(state, detail = "") {
  const words = t(`live.${state}`);
  return detail && state !== "playing" && state !== "starting" ? `${words}: ${detail}` : words;
}

function stateOfError(err) {
  if (err instanceof ApiError && err.status === 503) return "offline";
  if (err instanceof ApiError && err.status === 429) return "limit";
  return "error";
}

export function attachLive(video, cameraId, { onState = () => {} } = {}) {
  let stopped = false;
  let timer = null;
  let hls = null;
  let streamId = null;
  let playlist = null; // the newest signed playlist URL: hls.js always fetches this one
  let lastState = null;

  const report = (state, detail = "") => {
    if (stopped || (state === lastState && !detail)) return;
    lastState = state;
    video.dataset.liveState = state;
    onState(state, detail);
  };
  const later = (ms) => {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(ask, ms);
  };
  const detach = () => {
    if (hls) hls.destroy();
    hls = null;
    streamId = null;
  };

  function play(answer) {
    streamId = answer.stream_id;
    playlist = answer.playlist;
    if (Hls.isSupported()) {
      hls = new Hls({
        // Live edge: start one segment from the newest, catch up when more than four behind.
        liveSyncDurationCount: 1,
        liveMaxLatencyDurationCount: 4,
        maxLiveSyncPlaybackRate: 1.5,
        backBufferLength: 8,
        // A signed URL expires: every playlist reload takes the newest one (segment URLs in
        // it are signed afresh by the center each time).
        xhrSetup: (xhr, url) => {
          if (url.includes("/index.m3u8")) xhr.open("GET", playlist, true);
        },
      });
      hls.on(Hls.Events.FRAG_BUFFERED, () => report("playing"));
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        detach(); // the stream ended or went idle at the center: ask again now
        later(0);
      });
      hls.loadSource(playlist);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = playlist; // Safari plays HLS itself
      video.addEventListener("playing", () => report("playing"), { once: true });
    } else {
      report("error", "this browser plays neither HLS nor Media Source Extensions");
      return;
    }
    video.muted = true;
    video.playsInline = true;
    video.play().catch(() => {}); // autoplay of a muted video is allowed; a refusal shows controls
  }

  async function ask() {
    let answer;
    try {
      answer = await postJSON(`${API}/cameras/${encodeURIComponent(cameraId)}/live`, {});
    } catch (err) {
      if (stopped) return;
      detach();
      const state = stateOfError(err);
      report(state, err.detail || err.message);
      if (state !== "error" || !(err instanceof ApiError) || err.status >= 500) later(RETRY_MS);
      return;
    }
    if (stopped) return;
    playlist = answer.playlist;
    if (answer.state === "starting") {
      report("starting");
      later(STARTING_POLL_MS);
      return;
    }
    if (answer.stream_id !== streamId) {
      detach(); // a new stream (the old one stopped): play it from its start
      play(answer);
    }
    if (lastState !== "playing") report("starting");
    later(KEEPALIVE_MS);
  }

  report("starting");
  ask();
  return function stop() {
    stopped = true;
    clearTimeout(timer);
    detach();
    video.removeAttribute("src");
    video.load();
  };
}

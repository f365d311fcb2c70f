// The websocket to the center (LiveSocket, reconnecting with backoff), the page's connection
// light, and which of two copies of a record is newer.
import { t } from "./i18n.js";
import { refusedMessage, relogin } from "./login.js";
import { parseTime } from "./format.js";
import { getToken, tokenReplaced } from "./session.js";

export const SCHEMA_VERSION = 1;

/** The page's connection light (#ws-status): its word, class and data-state (tests wait on it). */
export function setWsStatus(online) {
  const el = document.getElementById("ws-status");
  const word = online ? "online" : "offline";
  el.textContent = t(`ws.${word}`);
  el.className = `ws-status ${word}`;
  el.dataset.state = word;
}

/**
 * A websocket to the center that reconnects by itself with exponential backoff and jitter.
 *
 *   const live = new LiveSocket("/ws", {
 *     onOpen: () => reloadState(),       // on every (re)connect, once the token is accepted: refetch
 *     onMessage: (msg) => ...,           // parsed {schema_version, type, at, data}
 *     onStatus: (online) => ...,
 *   });
 *   live.start();
 */
export class LiveSocket {
  constructor(path, { onOpen, onMessage, onStatus, minDelay = 500, maxDelay = 15000 } = {}) {
    this.path = path;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
    this.online = false;
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.path}`;
  }

  start() {
    this.stopped = false;
    // Reconnect at once when the network or the tab comes back instead of waiting out a backoff.
    this._wake = () => {
      if (!this.stopped && !this.ws && document.visibilityState !== "hidden") this._connectNow();
    };
    window.addEventListener("online", this._wake);
    document.addEventListener("visibilitychange", this._wake);
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this._wake);
    document.removeEventListener("visibilitychange", this._wake);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this._setOnline(false);
  }

  _setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    this.onStatus?.(online);
  }

  _connectNow() {
    clearTimeout(this.timer);
    this.attempt = 0;
    this._connect();
  }

  _deliver(msg) {
    if (!msg || typeof msg !== "object" || msg.schema_version !== SCHEMA_VERSION) return;
    if (msg.type === "hello") this._live();
    try {
      this.onMessage?.(msg);
    } catch (err) {
      console.error(err);
    }
  }

  _connect() {
    if (this.stopped || this.ws) return;
    let ws;
    const token = getToken();
    try {
      ws = new WebSocket(this.url);
    } catch {
      this._schedule();
      return;
    }
    this.ws = ws;
    // The token goes as the first message, never in the URL (docs/protocol.md); the server
    // answers "hello" once it has checked it, and only then is the page live. "batch": a busy
    // center may send several events in one frame, a JSON array of them in order.
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token, batch: true })));
    ws.addEventListener("message", (event) => {
      let parsed;
      try {
        parsed = JSON.parse(event.data);
      } catch {
        return;
      }
      for (const msg of Array.isArray(parsed) ? parsed : [parsed]) this._deliver(msg);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._setOnline(false);
      if (event.code === 4401 || event.code === 4403) {
        // The token is gone or expired: log in again (the page reloads after), unless this
        // browser has a new one by now (a password change): then reconnect with that.
        tokenReplaced(token).then((replaced) => {
          if (this.stopped) return;
          if (replaced) {
            this._connectNow();
            return;
          }
          this.stop();
          relogin(event.code === 4401 ? refusedMessage(event.reason) : t("login.expired"));
        });
        return;
      }
      this._schedule();
    });
    // "error" is always followed by "close"; nothing to do here.
  }

  _live() {
    this.attempt = 0;
    this._setOnline(true);
    try {
      this.onOpen?.();
    } catch (err) {
      console.error(err);
    }
  }

  _schedule() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const base = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this._connect(), delay);
  }
}

/**
 * Keeps the newer of two copies of a record (ticket, camera): a websocket message can overtake a
 * REST response that was already in flight, so never let an older copy replace a newer one.
 */
export function newer(current, incoming) {
  if (!current) return incoming;
  const a = parseTime(current.updated_at);
  const b = parseTime(incoming.updated_at);
  if (a && b && b < a) return current;
  return incoming;
}

/**
 * What a page does with a "summary" event (docs/protocol.md): in a storm the center sends a
 * slow screen only the latest state per ticket / camera and counts the rest, so the page's
 * lists and counters may miss what was folded; `reload` fetches them again. At most once per
 * `minGapMs` (a storm sends a summary each time the screen catches up), the last one always
 * followed by a reload.
 */
export function reloadOnSummary(reload, { minGapMs = 5000 } = {}) {
  let last = 0;
  let timer = null;
  const run = () => {
    timer = null;
    last = Date.now();
    reload();
  };
  return () => {
    if (timer) return;
    const wait = last + minGapMs - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
}

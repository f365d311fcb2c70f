// The phone's offline queue: ticket actions (with their photos) wait in IndexedDB and are sent
// in order when the center can be reached. Used by the page (phone.js) and by the service worker
// (sw.js, Background Sync), so it touches no DOM. A Web Lock keeps the two from sending at once.
//
// Resending is idempotent: an action the server refuses with 409 (already done, or the ticket
// moved on) is dropped and the page refetches; photos already uploaded are remembered on the
// queue entry, so a retry never uploads them twice.

const API = "/api/v1";
const DB_NAME = "gridwatch-phone";
const STORE = "outbox";
export const SYNC_TAG = "gridwatch-outbox";
export const CHANNEL = "gridwatch-outbox";

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      let result;
      Promise.resolve(fn(t.objectStore(STORE))).then((r) => (result = r), reject);
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

const req2p = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

/**
 * Queue an action: {ticket_id, token, body: {action, note?, extension_min?}, photos:
 * [Blob]}. ``token`` is the bearer token of the login that queued it (the service worker, which
 * sends in the background, cannot read localStorage).
 */
export async function enqueue(item) {
  const entry = { ...item, photos: item.photos || [], uploaded: [], created_at: new Date().toISOString() };
  const id = await tx("readwrite", (store) => req2p(store.add(entry)));
  broadcast({ type: "queued", id });
  return id;
}

export async function pending() {
  return tx("readonly", (store) => req2p(store.getAll()));
}

/** Give a worker's queued actions their fresh token (after a new login or a password change).
 * Another worker's entries on a shared phone keep theirs: they wait for that worker's login. */
export async function retoken(token, workerId) {
  for (const entry of await pending()) {
    if (entry.worker_id === workerId && entry.token !== token) await put({ ...entry, token });
  }
}

async function put(entry) {
  return tx("readwrite", (store) => req2p(store.put(entry)));
}

async function remove(id) {
  return tx("readwrite", (store) => req2p(store.delete(id)));
}

function broadcast(msg) {
  try {
    const ch = new BroadcastChannel(CHANNEL);
    ch.postMessage(msg);
    ch.close();
  } catch {
    /* no BroadcastChannel: the page polls its own badge */
  }
}

class Transient extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, { ...init, cache: "no-store" });
  } catch (err) {
    throw new Transient(err.message || "network error");
  }
  // 401: the login expired; kept until the phone logs in again (retoken) and flushes.
  if (response.status >= 500 || response.status === 408 || response.status === 429 || response.status === 401) {
    throw new Transient(`HTTP ${response.status}`, response.status);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    /* empty or not JSON */
  }
  return { status: response.status, ok: response.ok, data };
}

function detail(res) {
  const d = res.data?.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((x) => x?.msg ?? JSON.stringify(x)).join("; ");
  return `HTTP ${res.status}`;
}

/** Send one entry; returns {done: true, ...} or throws Transient (keep it, stop for now). */
async function deliver(entry) {
  const base = `${API}/tickets/${encodeURIComponent(entry.ticket_id)}`;
  const auth = entry.token ? { Authorization: `Bearer ${entry.token}` } : {};
  while (entry.uploaded.length < entry.photos.length) {
    const photo = entry.photos[entry.uploaded.length];
    const form = new FormData();
    form.append("photo", photo, photo.name || "photo.jpg");
    const res = await send(`${base}/attachments`, { method: "POST", body: form, headers: auth });
    if (!res.ok) return { done: true, ok: false, status: res.status, error: detail(res) };
    entry.uploaded.push(res.data.id);
    await put(entry); // a retry after a crash does not upload this photo again
  }
  // Entries queued by an older page carry actor_id, which the center now refuses (the token
  // says who acts, and it is the same person): leave it out rather than lose the action.
  const { actor_id: _queuedBeforeLogins, ...body } = entry.body;
  if (entry.uploaded.length) body.attachment_ids = [...(body.attachment_ids || []), ...entry.uploaded];
  const res = await send(`${base}/actions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...auth },
    body: JSON.stringify(body),
  });
  if (res.ok) return { done: true, ok: true, ticket: res.data };
  return { done: true, ok: false, status: res.status, error: detail(res) };
}

async function flushUnlocked() {
  const results = [];
  const loggedOut = new Set(); // workers whose login expired: their entries wait, others go on
  let stalled = null;
  for (const entry of await pending()) {
    if (loggedOut.has(entry.worker_id)) continue;
    let result;
    try {
      result = await deliver(entry);
    } catch (err) {
      if (!(err instanceof Transient)) throw err;
      if (err.status !== 401) return { results, stalled: true, error: err.message };
      loggedOut.add(entry.worker_id);
      stalled = err.message;
      continue;
    }
    await remove(entry.id);
    // 409: the action already happened (a resend whose first answer was lost) or the ticket has
    // moved on; either way it is not ours to retry. Other 4xx can never succeed: report them.
    const msg = { type: "sent", id: entry.id, ticket_id: entry.ticket_id, action: entry.body.action, ...result };
    results.push(msg);
    broadcast(msg);
  }
  return stalled ? { results, stalled: true, error: stalled } : { results, stalled: false };
}

/** Send everything queued, oldest first; stops at the first network failure (order kept). */
export async function flush() {
  if (globalThis.navigator?.locks) {
    return navigator.locks.request(CHANNEL, () => flushUnlocked());
  }
  return flushUnlocked();
}

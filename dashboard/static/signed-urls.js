// A picture (<img src>) or a download link cannot send the Authorization header, and the token
// never goes in a URL (browser history, proxy logs). The center signs such URLs for this person
// for a few minutes (POST /auth/signed-urls; docs/security.md "Tokens and URLs"). URLs asked for
// in the same moment go in one call; a signed URL is reused until a minute before it expires.
import { h } from "./dom.js";
import { API, postJSON } from "./http.js";
import { t } from "./i18n.js";
import { getToken } from "./session.js";

const SIGN_MARGIN_S = 60;
const SIGN_BATCH_MAX = 200;
const signedUrls = new Map(); // url -> {url, exp, token}
let signQueue = null; // url -> [{resolve, reject}] waiting for the next call

/** `url` (a path under /api/v1/) signed for the logged-in person; `fresh`: never a cached one. */
export function signUrl(url, { fresh = false } = {}) {
  if (!url || !url.startsWith(`${API}/`)) return Promise.resolve(url);
  const hit = signedUrls.get(url);
  if (!fresh && hit && hit.token === getToken() && hit.exp - SIGN_MARGIN_S > Date.now() / 1000) {
    return Promise.resolve(hit.url);
  }
  if (!signQueue) {
    signQueue = new Map();
    setTimeout(signQueued, 0);
  }
  return new Promise((resolve, reject) => {
    if (!signQueue.has(url)) signQueue.set(url, []);
    signQueue.get(url).push({ resolve, reject });
  });
}

async function signQueued() {
  const queue = signQueue;
  signQueue = null;
  const now = Date.now() / 1000;
  for (const [url, hit] of signedUrls) if (hit.exp <= now) signedUrls.delete(url);
  const urls = [...queue.keys()];
  for (let i = 0; i < urls.length; i += SIGN_BATCH_MAX) {
    const batch = urls.slice(i, i + SIGN_BATCH_MAX);
    const token = getToken();
    try {
      const data = await postJSON("auth/signed-urls", { urls: batch });
      batch.forEach((url, k) => {
        signedUrls.set(url, { url: data.urls[k], exp: data.expires_at, token });
        for (const waiter of queue.get(url)) waiter.resolve(data.urls[k]);
      });
    } catch (err) {
      for (const url of batch) for (const waiter of queue.get(url)) waiter.reject(err);
    }
  }
}

/**
 * An <img> of a protected picture at `url`, signed. A failed load is retried once with a fresh
 * signature (a lazy picture may load after its signature expired); then `onFail(img)`.
 */
export function signedImg(url, attrs = {}, onFail = (img) => img.remove()) {
  const img = h("img", attrs);
  let retried = false;
  const load = (fresh) => signUrl(url, { fresh }).then((signed) => { img.src = signed; }, () => onFail(img));
  img.addEventListener("error", () => {
    if (retried) onFail(img);
    else {
      retried = true;
      load(true);
    }
  });
  load(false);
  return img;
}

/**
 * Point a link at `url`, signed (a photo, a CSV download). Signed again when a pointer, a
 * finger or the focus comes to it, so the href is current when it is followed.
 */
export function signedHref(link, url) {
  link.dataset.path = url;
  const sign = () => {
    const path = link.dataset.path;
    signUrl(path).then((signed) => { if (link.dataset.path === path) link.href = signed; }, () => {});
  };
  if (!link.dataset.signing) {
    link.dataset.signing = "1";
    for (const type of ["pointerenter", "focus", "touchstart"]) link.addEventListener(type, sign, { passive: true });
  }
  sign();
  return link;
}

/** A snapshot <img>, or a placeholder when there is none or it fails to load. */
export function snapshot(url, alt, className = "snapshot") {
  const placeholder = () => h("div", { class: `${className} snapshot-missing` }, t("no_snapshot"));
  if (!url) return placeholder();
  return signedImg(url, { class: className, alt: alt || "", loading: "lazy", decoding: "async" },
    (img) => img.replaceWith(placeholder()));
}

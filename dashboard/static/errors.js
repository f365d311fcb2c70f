// Failures shown to people: one sentence in the page's language in the page's #error-banner.
import { h } from "./dom.js";
import { COLON, hasWords, t } from "./i18n.js";
import "./staff-words.js";

// The API refuses in English for developers and logs ("ticket 12 is not assigned to w-0111").
// People read one sentence in the page's language, chosen here from the status and the known
// shapes of the detail; the API's own words stay below it, smaller, for whoever reports it.
// A failure stays on screen until it is dismissed (or, for a load, until that load works),
// so a list reload can never wipe it before anyone read it.

// A refusal's `code` ("err.<code>") comes first; else [status (null: any), pattern of the API's
// detail, sentence]: the first match wins; else the status's sentence. The patterns follow the
// API's messages (center/api, center/tickets).
const ERROR_RULES = [
  [403, /is not assigned to/, "err.not_yours"],
  [null, /needs an assignee/, "err.needs_assignee"],
  [null, /cannot own a case/, "err.cannot_own"],
  [null, /changed state concurrently/, "err.concurrent"],
  [null, /^a \S+ may not /, "err.role"],
  [null, /is not allowed in state/, "err.state"],
  [null, /needs extension_min/, "err.extension"],
  [null, /no extension was requested/, "err.no_extension"],
  [null, /^too many /, "err.too_many"],
];
const ERROR_STATUS = {
  0: "err.network", 401: "err.login", 403: "err.forbidden", 404: "err.not_found",
  409: "err.conflict", 413: "err.too_large", 415: "err.photo_type", 422: "err.invalid",
  429: "err.too_many",
};

/**
 * A failure in the page's language: {text, detail, status}. `err` is an ApiError, anything
 * with `status` and `detail` (the phone's queued sends), or an Error of the page itself.
 */
export function errorText(err) {
  if (typeof err === "string") return { text: err, detail: "", status: null, key: "" }; // the page's own words
  const status = typeof err?.status === "number" ? err.status : null;
  const detail = String((status === null ? err?.message ?? err : err.detail ?? err.message) ?? "");
  const rule = ERROR_RULES.find(([s, re]) => (s === null || s === status) && re.test(detail));
  const coded = err?.code && hasWords(`err.${err.code}`) ? `err.${err.code}` : null;
  const key = coded ?? rule?.[2] ?? ERROR_STATUS[status] ?? (status >= 500 ? "err.server" : "err.unknown");
  const text = t(key);
  return { text, detail: detail === text ? "" : detail, status, key };
}

function errorBanner() {
  let banner = document.getElementById("error-banner");
  if (!banner) {
    banner = h("div", { id: "error-banner", class: "banner banner-error", role: "alert", hidden: true });
    document.body.prepend(banner);
  }
  return banner;
}

/**
 * Show a failure in the page's error banner (#error-banner) until the person dismisses it.
 * `what` names what failed ("派遣 #12"); `key` groups failures of one kind: a newer one replaces
 * the older, and `clearError(key)` removes it once that thing works again (loads do that;
 * a refused action stays until it is read and dismissed).
 */
export function showError(err, { what = "", key = "action" } = {}) {
  const { text, detail, status } = errorText(err);
  const banner = errorBanner();
  const item = h(
    "div",
    { class: "error-item", dataset: { key, status: status ?? "" } },
    h("div", { class: "error-body" },
      h("p", { class: "error-text" }, what ? `${what}${COLON}${text}` : text),
      detail ? h("p", { class: "error-detail" }, detail) : null),
    h("button", { type: "button", class: "banner-close error-dismiss", onclick: () => {
      item.remove();
      syncBanner(banner);
    } }, t("dismiss")),
  );
  const old = [...banner.querySelectorAll(".error-item")].find((el) => el.dataset.key === key);
  if (old) old.replaceWith(item);
  else banner.append(item);
  syncBanner(banner);
  return item;
}

/** Remove the failure shown under `key` (the thing that failed works again). */
export function clearError(key) {
  const banner = document.getElementById("error-banner");
  if (!banner) return;
  for (const el of banner.querySelectorAll(".error-item")) if (el.dataset.key === key) el.remove();
  syncBanner(banner);
}

function syncBanner(banner) {
  banner.hidden = !banner.querySelector(".error-item");
}

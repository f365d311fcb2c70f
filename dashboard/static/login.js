// The login form and the logged-in person: ensureLogin() at a page's start, logOut(), relogin().
import { h } from "./dom.js";
import { API, detailText } from "./http.js";
import { t } from "./i18n.js";
import { getToken, me, setMe, setToken, storeLogin } from "./session.js";
import "./staff-words.js";

/** The login form's message for a refused token (the server's words say which case it is). */
export const refusedMessage = (detail) => t(/revoked/i.test(detail || "") ? "login.revoked" : "login.expired");

let loginShown = null;

/** The login form over the page; resolves with the person once a login succeeds. */
export function showLogin(message = "") {
  if (loginShown) return loginShown;
  loginShown = new Promise((resolve) => {
    const error = h("p", { class: "login-error", role: "alert" }, message);
    const id = h("input", { id: "login-person", name: "person_id", autocomplete: "username", required: true, autocapitalize: "off", spellcheck: "false" });
    const pw = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
    const form = h("form", { class: "login-form" },
      h("h2", {}, t("login.title")),
      h("label", {}, t("login.person"), id),
      h("label", {}, t("login.password"), pw),
      h("button", { type: "submit", id: "login-submit" }, t("login.submit")),
      error);
    const overlay = h("div", { class: "login-overlay", id: "login" }, form);
    Object.assign(overlay.style, { position: "fixed", inset: "0", zIndex: "10000", display: "flex", alignItems: "center", justifyContent: "center", background: "rgba(8,12,20,0.92)" });
    Object.assign(form.style, { display: "flex", flexDirection: "column", gap: "0.6rem", padding: "1.5rem", minWidth: "16rem", background: "#18202e", color: "#e8edf5", borderRadius: "8px", font: "16px system-ui, sans-serif" });
    for (const label of form.querySelectorAll("label")) Object.assign(label.style, { display: "flex", flexDirection: "column", gap: "0.2rem" });
    id.value = localStorage.getItem("gridwatch.login.person") || "";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const r = await fetch(`${API}/auth/login`, {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, cache: "no-store",
          body: JSON.stringify({ person_id: id.value.trim(), password: pw.value }),
        });
        const data = await r.json().catch(() => ({}));
        if (!r.ok) {
          error.textContent = r.status === 429 ? `${t("login.too_many")} (${r.headers.get("Retry-After") || "60"} s)` : t("login.failed");
          return;
        }
        storeLogin(data);
        overlay.remove();
        loginShown = null;
        resolve(data.person);
      } catch (err) {
        error.textContent = err.message || "network error";
      }
    });
    document.body.append(overlay);
    (id.value ? pw : id).focus();
  });
  return loginShown;
}

const LOGIN_MESSAGE_KEY = "gridwatch.login.message"; // shown by the login form after a reload

/** The logged-in person: checks a stored token (GET /auth/me), else shows the login form. */
export async function ensureLogin() {
  if (getToken()) {
    try {
      const r = await fetch(`${API}/auth/me`, { headers: { Authorization: `Bearer ${getToken()}` }, cache: "no-store" });
      if (r.ok) {
        setMe(await r.json());
        return me;
      }
      if (r.status === 401) {
        setToken("");
        const data = await r.json().catch(() => ({}));
        return showLogin(refusedMessage(detailText(data.detail)));
      }
    } catch {
      // offline (the phone): keep the stored token, the page works from its queue
      return me;
    }
  }
  const message = sessionStorage.getItem(LOGIN_MESSAGE_KEY) || "";
  sessionStorage.removeItem(LOGIN_MESSAGE_KEY);
  return showLogin(message);
}

/** Log out on this device: forget the token and start the page again at the login form. */
export function logOut(message = "") {
  setToken("");
  setMe(null);
  if (message) sessionStorage.setItem(LOGIN_MESSAGE_KEY, message);
  location.reload();
}

/** Forget the token and show the login form again (a "log out" button, or a 401). */
export function relogin(message = "") {
  setToken("");
  setMe(null);
  return showLogin(message).then(() => location.reload());
}

// The account control every logged-in page has in its header: who is logged in, and a small
// panel to log out on this device, log out everywhere (POST /auth/logout-all) or change the
// password (POST /auth/password; its answer is this device's new token, so it stays logged in).
// Server side: docs/security.md "Revoking tokens". Styles: static/account.css (loaded from here,
// so pages with their own stylesheet get it too).
import { h } from "./dom.js";
import { errorText } from "./errors.js";
import { API } from "./http.js";
import { t } from "./i18n.js";
import { logOut, relogin } from "./login.js";
import { getToken, me, storeLogin, tokenReplaced, whileTokenChanges } from "./session.js";
import "./staff-words.js";

const MIN_PASSWORD = 8; // center/services/passwords.py MIN_PASSWORD

if (!document.querySelector('link[href="/static/account.css"]')) {
  document.head.append(h("link", { rel: "stylesheet", href: "/static/account.css" }));
}

const ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="8" r="4"/><path d="M4 21c0-4.4 3.6-7 8-7s8 2.6 8 7"/></svg>';

function roleName(role) {
  const key = `role.${role}`;
  return t(key) === key ? role || "" : t(key);
}

/** POST to the auth API with this device's token; {ok, status, data, retryAfter}. */
async function post(path, body) {
  const token = getToken();
  const r = await fetch(`${API}/auth/${path}`, {
    method: "POST",
    cache: "no-store",
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  return { ok: r.ok, status: r.status, data, retryAfter: r.headers.get("Retry-After") };
}

/**
 * Put the account button into the page header (before `before`, default the language link) and
 * wire its panel. `compact`: the icon only (the page shows the name elsewhere: the phone's
 * heading). `onToken(token)`: told the new token after a password change
 * (the phone re-tokens its offline queue). Returns the button.
 */
export function mountAccount({ before = document.getElementById("lang-switch"), compact = false, onToken } = {}) {
  const person = me || { id: localStorage.getItem("gridwatch.login.person") || "" };
  const name = person.name || person.id;
  const button = h("button", {
    type: "button",
    id: "account-button",
    class: `account-button${compact ? " is-compact" : ""}`,
    "data-testid": "account-button",
    dataset: { personId: person.id },
    title: `${t("account.menu")}: ${name}`,
    "aria-label": `${t("account.menu")}: ${name}`,
    "aria-haspopup": "dialog",
    "aria-expanded": "false",
  }, h("span", { class: "account-name" }, name));
  button.insertAdjacentHTML("afterbegin", ICON);

  const error = h("p", { class: "account-error", id: "account-error", role: "alert" });
  const ok = h("p", { class: "account-ok", id: "account-ok", role: "status" });
  const say = (text, good = false) => {
    error.textContent = good ? "" : text;
    ok.textContent = good ? text : "";
  };

  // --- change password ---
  const field = (id, auto, label) => {
    const input = h("input", { id, type: "password", autocomplete: auto, required: true });
    return [input, h("label", { for: id }, label, input)];
  };
  const [current, currentLabel] = field("account-current", "current-password", t("account.password.current"));
  const [fresh, freshLabel] = field("account-new", "new-password", t("account.password.new"));
  const [repeat, repeatLabel] = field("account-repeat", "new-password", t("account.password.repeat"));
  fresh.minLength = MIN_PASSWORD;
  const submit = h("button", { type: "submit", id: "account-password-submit", class: "account-primary" }, t("account.password.submit"));
  const form = h("form", { class: "account-form", id: "account-password-form", hidden: true, novalidate: true },
    // For password managers: whose password this is.
    h("input", { type: "text", name: "username", autocomplete: "username", value: person.id, hidden: true, readonly: true, tabindex: "-1" }),
    currentLabel, freshLabel, repeatLabel,
    h("div", { class: "account-row" },
      submit,
      h("button", { type: "button", id: "account-password-cancel", onclick: () => showForm(false) }, t("account.password.cancel"))));

  const passwordToggle = h("button", { type: "button", id: "account-password", onclick: () => showForm(form.hidden) }, t("account.password"));
  const logout = h("button", { type: "button", id: "account-logout" },
    t("account.logout"), h("small", {}, t("account.logout.hint")));
  const logoutAll = h("button", { type: "button", id: "account-logout-all", class: "account-danger" },
    h("span", {}, t("account.logout_all")), h("small", {}, t("account.logout_all.hint")));

  const panel = h("div", {
    class: "account-panel", id: "account-panel", role: "dialog", "aria-modal": "true",
    "aria-labelledby": "account-who", "data-testid": "account-panel",
  },
  h("button", { type: "button", class: "account-close", id: "account-close", "aria-label": t("account.close"), onclick: () => close() }, "×"),
  h("div", { class: "account-who", id: "account-who" },
    h("strong", {}, name),
    h("span", {}, [person.id, roleName(person.role)].filter(Boolean).join(" · "))),
  h("div", { class: "account-actions" }, passwordToggle, form, error, ok, logout, logoutAll));
  const overlay = h("div", { class: "account-overlay", id: "account-overlay", hidden: true }, panel);
  if (document.body.classList.contains("wall")) overlay.classList.add("is-wall");
  document.body.append(overlay);

  // While the panel is open the rest of the page is inert: Tab stays in the panel and a screen
  // reader reads only the panel. A login form shown meanwhile is added later, so not inert.
  let inerted = [];
  function open() {
    say("");
    disarm();
    inerted = [...document.body.children].filter((el) => el !== overlay && !el.inert);
    for (const el of inerted) el.inert = true;
    overlay.hidden = false;
    button.setAttribute("aria-expanded", "true");
    passwordToggle.focus();
  }
  function close() {
    for (const el of inerted) el.inert = false;
    inerted = [];
    overlay.hidden = true;
    showForm(false);
    disarm();
    button.setAttribute("aria-expanded", "false");
    button.focus();
  }
  function showForm(show) {
    form.hidden = !show;
    passwordToggle.setAttribute("aria-expanded", String(show));
    if (!show) form.reset();
    else {
      say("");
      current.focus();
    }
  }
  button.addEventListener("click", () => (overlay.hidden ? open() : close()));
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) close();
  });
  overlay.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });

  // --- log out (this device): forget the token, start again at the login form ---
  logout.addEventListener("click", () => logOut(t("login.logged_out")));

  // --- log out everywhere: two clicks (arm, confirm), like the wall's emergency switch ---
  let armTimer = null;
  function disarm() {
    clearTimeout(armTimer);
    delete logoutAll.dataset.armed;
    logoutAll.firstChild.textContent = t("account.logout_all");
  }
  logoutAll.addEventListener("click", async () => {
    if (logoutAll.dataset.armed !== "true") {
      logoutAll.dataset.armed = "true";
      logoutAll.firstChild.textContent = t("account.logout_all.confirm");
      armTimer = setTimeout(disarm, 5000);
      return;
    }
    disarm();
    logoutAll.disabled = true;
    say("");
    try {
      // Marked as a token change: this page's socket, closed by the server meanwhile, waits
      // for this answer instead of showing the login form with the wrong message.
      const res = await whileTokenChanges(async () => {
        const r = await post("logout-all", {});
        if (r.ok || r.status === 401) logOut(t("login.logged_out_all"));
        return r;
      });
      if (!res.ok && res.status !== 401) say(`${t("account.failed")}: ${errorText({ status: res.status, detail: detail(res) }).text}`);
    } catch (err) {
      say(`${t("account.failed")}: ${errorText({ status: 0, detail: err.message }).text}`);
    } finally {
      logoutAll.disabled = false;
    }
  });

  // --- change password ---
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say("");
    if (!current.value) {
      current.focus();
      return;
    }
    if (fresh.value.length < MIN_PASSWORD) {
      say(t("account.password.short"));
      fresh.focus();
      return;
    }
    if (fresh.value !== repeat.value) {
      say(t("account.password.mismatch"));
      repeat.focus();
      return;
    }
    submit.disabled = true;
    const used = getToken();
    try {
      const res = await whileTokenChanges(async () => {
        const r = await post("password", { current_password: current.value, new_password: fresh.value });
        if (!r.ok) return r;
        // Before the mark goes: the page's socket reconnects (and the phone flushes its queue)
        // with the new token once it is gone.
        storeLogin(r.data);
        try {
          await onToken?.(r.data.access_token);
        } catch (err) {
          console.warn("after the password change", err);
        }
        return r;
      });
      if (res.ok) {
        showForm(false);
        say(t("account.password.done"), true);
        window.dispatchEvent(new CustomEvent("gridwatch:token", { detail: { token: res.data.access_token } }));
        return;
      }
      if (res.status === 401) {
        if (await tokenReplaced(used)) say(t("account.password.conflict"));
        else relogin(t("login.revoked"));
      } else if (res.status === 403) {
        say(t("account.password.wrong"));
        current.select();
      } else if (res.status === 422) {
        say(t("account.password.short"));
        fresh.focus();
      } else if (res.status === 409) {
        say(t("account.password.conflict"));
      } else if (res.status === 429) {
        say(`${t("login.too_many")} (${res.retryAfter || "60"} s)`);
      } else {
        say(`${t("account.failed")}: ${errorText({ status: res.status, detail: detail(res) }).text}`);
      }
    } catch (err) {
      say(`${t("account.failed")}: ${errorText({ status: 0, detail: err.message }).text}`);
    } finally {
      submit.disabled = false;
    }
  });

  before.before(button);
  return button;
}

function detail(res) {
  const d = res.data?.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((x) => x?.msg ?? JSON.stringify(x)).join("; ");
  return `HTTP ${res.status}`;
}

// Who is logged in on this browser: the bearer token and the person it belongs to.
// Staff pages log in once per browser: the bearer token (never a cookie, so no CSRF) lives in
// localStorage and goes with every API call and as the websocket's first message, never in a
// URL (pictures and downloads use signed URLs, signed-urls.js). A 401 (expired, revoked) shows the login
// form again. Public pages (/report, /t/…) never log in.

export const TOKEN_KEY = "gridwatch.token";
/** The logged-in person ({id, name, role, micro_grid_id, grid_id, department_id}) once known. */
export let me = null;
export function setMe(person) {
  me = person;
}

export const getToken = () => localStorage.getItem(TOKEN_KEY) || "";
export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Keep a login's answer (from /auth/login or /auth/password): its token and its person. */
export function storeLogin(data) {
  setToken(data.access_token);
  if (data.person) {
    me = data.person;
    localStorage.setItem("gridwatch.login.person", data.person.id);
  }
}

// Replacing the token (a password change, logging out everywhere) revokes the old one first:
// the server closes this browser's sockets (4401) and refuses requests still in flight (401)
// before the new token has arrived. While a change runs (in any tab of this browser: the mark
// is in localStorage, shared like the token), those wait for it, then carry on with the new
// token instead of showing the login form.
const CHANGING_KEY = "gridwatch.token.changing";
const CHANGE_MAX_MS = 15000;

/** Run `work` (a password change, a logout everywhere) with the token marked as changing. */
export async function whileTokenChanges(work) {
  localStorage.setItem(CHANGING_KEY, String(Date.now()));
  try {
    return await work();
  } finally {
    localStorage.removeItem(CHANGING_KEY);
  }
}

function tokenChanging() {
  const since = Number(localStorage.getItem(CHANGING_KEY) || 0);
  return since > 0 && Date.now() - since < CHANGE_MAX_MS;
}

/** After a 401/4401 for `used`: whether this browser has another token now (use it, no login). */
export async function tokenReplaced(used) {
  while (tokenChanging()) await new Promise((resolve) => setTimeout(resolve, 100));
  const current = getToken();
  return !!current && current !== used;
}

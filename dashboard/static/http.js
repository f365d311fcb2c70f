// Calls to the center's REST API: the bearer token on every call, the API's refusals as ApiError
// (with the server's words and its reason code). A 401 shows the login form (login.js), unless
// a password change made in this browser replaced the token meanwhile: then it is sent again.
// login.js imports this module too; the cycle is only between functions called later.
import { refusedMessage, relogin } from "./login.js";
import { getToken, tokenReplaced } from "./session.js";

export const API = "/api/v1";

export class ApiError extends Error {
  /** `code`: the machine-readable reason some refusals carry ({"detail": {"code", "message"}}). */
  constructor(status, detail, code = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.code = code;
  }
}

export function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail === "string") return detail;
  // FastAPI validation errors: [{loc, msg, type}, ...]
  if (Array.isArray(detail)) return detail.map((d) => d?.msg ?? JSON.stringify(d)).join("; ");
  return typeof detail.message === "string" ? detail.message : JSON.stringify(detail);
}

/** fetch JSON from the center; throws ApiError carrying the server's "detail" on failure. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal, cache: "no-store" };
  const token = getToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser sets Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, err.message || "network error");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  const detail = data && typeof data === "object" ? detailText(data.detail) : detailText(data);
  if (response.status === 401) {
    // Revoked by a password change made here (or in another tab): retry with the new token.
    if (token && (await tokenReplaced(token))) return api(path, { method, body, signal });
    relogin(refusedMessage(detail));
  }
  if (!response.ok) {
    const code = typeof data?.detail?.code === "string" ? data.detail.code : null;
    throw new ApiError(response.status, detail || `${response.status} ${response.statusText}`, code);
  }
  return data;
}

export const getJSON = (path, opts) => api(path, opts);
export const postJSON = (path, body, opts) => api(path, { ...opts, method: "POST", body });
export const putJSON = (path, body, opts) => api(path, { ...opts, method: "PUT", body });

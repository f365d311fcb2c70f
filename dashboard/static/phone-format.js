// The phone's ways of saying things that are more than a word: why a case came back to its
// worker, and the live countdown to a stage's deadline.
import { h } from "./dom.js";
import { parseTime } from "./format.js";
import { COLON, LANG, t } from "./i18n.js";
import "./phone-words.js";

/** Why a case came back to its worker (returned before, or sent for rework), in words. */
export function sentBackText(ticket) {
  const back = ticket.sent_back;
  if (!back) return "";
  const head = back.action === "rework"
    ? (ticket.rework_count > 1 ? t("sent_back.rework_n", { n: ticket.rework_count }) : t("sent_back.rework"))
    : t("sent_back.return");
  // The camera's own note is the center's English; a person's note is theirs.
  const why = String(back.actor_id || "").startsWith("camera:") ? t("sent_back.camera") : back.note;
  return why ? `${head}${COLON}${why}` : head;
}

/** "12:34" / "1:02:03" / "2天3时" until (or, negative, since) the deadline. */
export function fmtRemaining(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  if (d > 0) return LANG === "zh" ? `${d}天${hh}时` : `${d}d${hh}h`;
  return hh > 0 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

function paint(el, now = Date.now()) {
  const due = parseTime(el.dataset.due);
  if (!due) return;
  const ms = due.getTime() - now;
  const overdue = ms < 0;
  el.classList.toggle("is-overdue", overdue);
  el.classList.toggle("is-soon", !overdue && ms < 10 * 60 * 1000);
  el.dataset.overdue = String(overdue);
  el.textContent = overdue ? `${t("due.overdue")} ${fmtRemaining(ms)}` : `${t("due.left")} ${fmtRemaining(ms)}`;
}

/** A live countdown element for a deadline (kept current by tickCountdowns). */
export function countdown(due) {
  const el = h("span", { class: "countdown", dataset: { due: due || "" } });
  paint(el);
  return el;
}

export function tickCountdowns(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll(".countdown[data-due]")) paint(el, now);
}

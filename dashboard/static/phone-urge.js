// An urge on the worker's phone (docs/phone.md "Urges"): a leader or the duty operator pushed
// this case ("urge" in the ledger, reason "urged"). It must not be missed in a street's noise,
// so it is louder than a new case: a red message that stays until dismissed, a long vibration,
// three beeps, a system notification that stays, and the case's card marked. Who urged and why
// come from the case's ledger once it loads (offline: the message still shows, without them).
import { h } from "./dom.js";
import { API, getJSON } from "./http.js";
import "./handoff-words.js";
import { t } from "./i18n.js";
import { actorName } from "./ledger.js";

/** A long buzz-pause pattern; browsers refuse vibration before the user has touched the page. */
const PATTERN = [400, 150, 400, 150, 600];

function vibrateLong() {
  const active = !navigator.userActivation || navigator.userActivation.hasBeenActive;
  if (active && typeof navigator.vibrate === "function") navigator.vibrate(PATTERN);
}

/**
 * Show an urge loudly. `phone` is the page's own means (phone.js): showMessage(kind, content),
 * beep(), systemNotify(title, body, tag, options), cardOf(id), eventName(code, name).
 */
export function showUrge(ticket, phone) {
  const id = String(ticket.id);
  const text = t("urge.text", { id, name: phone.eventName(ticket.event_type, ticket.event_name) });
  const who = h("small", { class: "urge-who" });
  const item = phone.showMessage("urge", [h("strong", { class: "message-title" }, t("urge.title")), h("p", { class: "message-text" }, text), who]);
  item.dataset.ticketId = id;
  item.dataset.testid = "urge-message";
  vibrateLong();
  phone.beep();
  setTimeout(() => phone.beep(), 500);
  setTimeout(() => phone.beep(), 1000);
  phone.systemNotify(t("urge.title"), text, `urge-${id}`, { requireInteraction: true });
  document.body.dataset.lastUrged = id;
  // After the page has applied the pushed case (its card may be redrawn by it).
  queueMicrotask(() => phone.cardOf(id)?.classList.add("is-urged"));
  fillWho(ticket.id, who);
}

/** Who urged and their words, from the latest "urge" of the case's ledger. */
async function fillWho(ticketId, el) {
  try {
    const detail = await getJSON(`${API}/tickets/${ticketId}`);
    const urge = (detail.events ?? []).filter((e) => e.action === "urge").at(-1);
    if (!urge) return;
    el.textContent = `${t("urge.by")} ${actorName(urge.actor_id)}${urge.note ? ` · ${urge.note}` : ""}`;
  } catch {
    /* offline: the message stands without them */
  }
}

// Verdicts (docs/verdicts.md): an alert or a case was a real violation, or a false alarm and
// why. One control for the wall (in a dialog: its feed re-renders under it), the leader view
// and the phone; it posts to /api/v1/verdicts and lets the page reload on success. The center
// pushes a "verdict" message so that the other screens update too.
import { h } from "./dom.js";
import { showError } from "./errors.js";
import { API, postJSON } from "./http.js";
import { COLON, t } from "./i18n.js";
import { VERDICT_REASON_IDS, verdictReasonName } from "./vocabulary.js";
import "./verdict-words.js";

/** "False alarm: someone riding it" / "Confirmed", for a verdict row or pushed message. */
export function verdictText(v) {
  if (!v) return t("verdict.none");
  return v.verdict === "false_alarm" ? `${t("verdict.false_alarm")}${COLON}${verdictReasonName(v.reason)}` : t("verdict.confirmed");
}

async function send(body, done) {
  const what = `${t("verdict.title")} ${body.ticket_id ? `#${body.ticket_id}` : ""}`.trim();
  try {
    const result = await postJSON(`${API}/verdicts`, body);
    done?.(result);
    return true;
  } catch (err) {
    showError(err, { what });
    return false;
  }
}

/**
 * Confirm / false-alarm buttons and the false alarm's form (reason, note, void).
 * `ticketId` or `alertId` names what is judged; `canVoid` offers voiding the open case (the
 * state machine's void, for leaders and operators); `siteCheck` words the false alarm as a
 * worker on site does ("nothing there"); `current` is the current verdict, if any.
 */
export function verdictBlock({ ticketId = null, alertId = null, canVoid = false, siteCheck = false, current = null, onDone = null }) {
  const subject = ticketId != null ? { ticket_id: ticketId } : { alert_id: alertId };
  const reason = h("select", { name: "reason", "data-testid": "verdict-reason", "aria-label": t("verdict.reason") }, ...VERDICT_REASON_IDS.map((r) => h("option", { value: r }, verdictReasonName(r))));
  const note = h("input", { type: "text", name: "note", maxlength: "2000", placeholder: t("verdict.note") });
  const voidBox = canVoid ? h("input", { type: "checkbox", name: "void", checked: true, "data-testid": "verdict-void" }) : null;
  const form = h(
    "form",
    { class: "verdict-form", hidden: true, "data-testid": "verdict-form" },
    h("label", {}, t("verdict.reason"), " ", reason),
    note,
    voidBox ? h("label", { class: "verdict-void" }, voidBox, " ", t("verdict.void")) : null,
    h("button", { type: "submit", class: "verdict-submit", "data-testid": "verdict-submit" }, t("verdict.submit")),
    h("button", { type: "button", class: "verdict-cancel", onclick: () => (form.hidden = true) }, t("verdict.cancel")),
  );
  const block = h(
    "section",
    { class: "verdict", "data-testid": "verdict", dataset: { current: current?.verdict ?? "" } },
    h("span", { class: "verdict-current", "data-testid": "verdict-current" }, `${t("verdict.current")}${COLON}${verdictText(current)}`),
    h(
      "span",
      { class: "verdict-buttons" },
      h("button", { type: "button", class: "verdict-confirm", dataset: { verdict: "confirmed" }, onclick: () => confirm() }, t("verdict.confirmed")),
      h("button", { type: "button", class: "verdict-false", dataset: { verdict: "false_alarm" }, onclick: () => (form.hidden = false) }, t(siteCheck ? "verdict.nothing_there" : "verdict.false_alarm")),
    ),
    form,
  );
  const busy = (on) => {
    for (const b of block.querySelectorAll("button")) b.disabled = on;
  };
  async function confirm() {
    busy(true);
    await send({ ...subject, verdict: "confirmed" }, onDone);
    busy(false);
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    busy(true);
    const body = { ...subject, verdict: "false_alarm", reason: reason.value, note: note.value.trim(), void: !!voidBox?.checked };
    if (await send(body, onDone)) form.hidden = true;
    busy(false);
  });
  return block;
}

/** The same control in a modal dialog (the wall's feed items are rebuilt under an open form). */
export function openVerdictDialog(opts, title = "") {
  let dialog = document.getElementById("verdict-dialog");
  if (!dialog) {
    dialog = h("dialog", { id: "verdict-dialog", class: "verdict-dialog", "data-testid": "verdict-dialog" });
    document.body.append(dialog);
  }
  const close = h("button", { type: "button", class: "verdict-close", onclick: () => dialog.close() }, t("verdict.cancel"));
  const block = verdictBlock({ ...opts, onDone: (r) => (dialog.close(), opts.onDone?.(r)) });
  dialog.replaceChildren(h("h3", {}, t("verdict.title"), title ? ` · ${title}` : ""), block, close);
  dialog.showModal();
  return dialog;
}

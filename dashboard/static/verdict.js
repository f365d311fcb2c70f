// Verdicts (docs/verdicts.md): an alert or a case was a real violation, or a false alarm and
// why. One control for the wall (in a dialog: its feed re-renders under it), the leader view
// and the phone; it posts to /api/v1/verdicts and lets the page reload on success. The center
// pushes a "verdict" message so that the other screens update too.
import { API, h, LANG, postJSON, showError } from "./common.js";

export const REASONS = ["wrong_class", "not_parked", "rider", "person_not_goods", "outside_zone", "other"];

const WORDS = {
  zh: {
    title: "研判",
    confirmed: "确认违规",
    false_alarm: "误报",
    nothing_there: "现场无此情况",
    reason: "误报原因",
    note: "说明（选填）",
    void: "同时作废案件",
    submit: "提交",
    cancel: "取消",
    current: "当前研判",
    none: "尚未研判",
    done: "已记录研判",
    by: "由",
    "reason.wrong_class": "识别类别错误",
    "reason.not_parked": "未停放（行驶中）",
    "reason.rider": "有人骑乘",
    "reason.person_not_goods": "是行人不是货物",
    "reason.outside_zone": "不在区域内",
    "reason.other": "其他",
    kpi: "今日误报",
    badge: "误报",
  },
  en: {
    title: "Verdict",
    confirmed: "Confirmed",
    false_alarm: "False alarm",
    nothing_there: "Nothing there",
    reason: "Why a false alarm",
    note: "Note (optional)",
    void: "Void the case too",
    submit: "Submit",
    cancel: "Cancel",
    current: "Current verdict",
    none: "Not judged yet",
    done: "Verdict recorded",
    by: "by",
    "reason.wrong_class": "wrong class",
    "reason.not_parked": "not parked (moving)",
    "reason.rider": "someone riding it",
    "reason.person_not_goods": "a person, not goods",
    "reason.outside_zone": "outside the zone",
    "reason.other": "other",
    kpi: "False alarms today",
    badge: "false",
  },
};

/** A word of this module in the page's language. */
export function vt(key) {
  return WORDS[LANG][key] ?? WORDS.zh[key] ?? key;
}

/** "False alarm: someone riding it" / "Confirmed", for a verdict row or pushed message. */
export function verdictText(v) {
  if (!v) return vt("none");
  const colon = LANG === "zh" ? "：" : ": ";
  return v.verdict === "false_alarm" ? `${vt("false_alarm")}${colon}${vt(`reason.${v.reason}`)}` : vt("confirmed");
}

async function send(body, done) {
  const what = `${vt("title")} ${body.ticket_id ? `#${body.ticket_id}` : ""}`.trim();
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
  const reason = h("select", { name: "reason", "data-testid": "verdict-reason", "aria-label": vt("reason") }, ...REASONS.map((r) => h("option", { value: r }, vt(`reason.${r}`))));
  const note = h("input", { type: "text", name: "note", maxlength: "2000", placeholder: vt("note") });
  const voidBox = canVoid ? h("input", { type: "checkbox", name: "void", checked: true, "data-testid": "verdict-void" }) : null;
  const form = h(
    "form",
    { class: "verdict-form", hidden: true, "data-testid": "verdict-form" },
    h("label", {}, vt("reason"), " ", reason),
    note,
    voidBox ? h("label", { class: "verdict-void" }, voidBox, " ", vt("void")) : null,
    h("button", { type: "submit", class: "verdict-submit", "data-testid": "verdict-submit" }, vt("submit")),
    h("button", { type: "button", class: "verdict-cancel", onclick: () => (form.hidden = true) }, vt("cancel")),
  );
  const block = h(
    "section",
    { class: "verdict", "data-testid": "verdict", dataset: { current: current?.verdict ?? "" } },
    h("span", { class: "verdict-current", "data-testid": "verdict-current" }, `${vt("current")}${LANG === "zh" ? "：" : ": "}${verdictText(current)}`),
    h(
      "span",
      { class: "verdict-buttons" },
      h("button", { type: "button", class: "verdict-confirm", dataset: { verdict: "confirmed" }, onclick: () => confirm() }, vt("confirmed")),
      h("button", { type: "button", class: "verdict-false", dataset: { verdict: "false_alarm" }, onclick: () => (form.hidden = false) }, vt(siteCheck ? "nothing_there" : "false_alarm")),
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
  const close = h("button", { type: "button", class: "verdict-close", onclick: () => dialog.close() }, vt("cancel"));
  const block = verdictBlock({ ...opts, onDone: (r) => (dialog.close(), opts.onDone?.(r)) });
  dialog.replaceChildren(h("h3", {}, vt("title"), title ? ` · ${title}` : ""), block, close);
  dialog.showModal();
  return dialog;
}

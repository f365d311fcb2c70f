// The public page of one case (/t/<token>): what was done (progress as a timeline in plain
// words, the handling note, the photo after handling) before it asks for a rating (1-5), which
// the center allows once the place is verified clear.
import { applyI18n, LANG, otherLangHref, t } from "./i18n.js";
import { eventName } from "./vocabulary.js";
import "./resident-words.js";
import { residentErrorText } from "./resident-errors.js";

const token = decodeURIComponent(location.pathname.split("/").pop());
const api = `/api/v1/public/tickets/${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);
const when = (iso) => new Date(iso).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", { hour12: false });

applyI18n();
document.title = `${t("case.title")} · gridwatch`;
$("lang-switch").textContent = LANG === "zh" ? "EN" : "中文";
$("lang-switch").href = otherLangHref();

/** A step of the ledger in a resident's words: a return reads "being assigned again". */
const stepText = (step) => t(step.action === "return" ? "step.return" : step.action === "register" ? "step.register" : `step.${step.state}`);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function show(c) {
  $("case").hidden = false;
  $("event-name").textContent = `${c.event_type} ${eventName(c.event_type, c.event_name)}`;
  $("case-number").textContent = `#${c.id}`;
  $("state").textContent = t(`step.${c.state}`);
  $("state").dataset.state = c.state;
  $("opened").textContent = when(c.opened_at);
  $("closed-row").hidden = !c.closed_at;
  if (c.closed_at) $("closed").textContent = when(c.closed_at);
  $("steps").replaceChildren(...(c.progress || []).map((step) => {
    const li = document.createElement("li");
    li.dataset.state = step.state;
    const time = document.createElement("time");
    time.dateTime = step.at;
    time.textContent = when(step.at);
    li.append(time, stepText(step));
    return li;
  }));
  $("handling").hidden = !c.handling_note;
  $("note").textContent = c.handling_note || "";
  $("after").hidden = !c.after_photo_url;
  if (c.after_photo_url && $("after-photo").getAttribute("src") !== c.after_photo_url) $("after-photo").src = c.after_photo_url;
  $("rate").hidden = !c.can_rate;
  $("thanks").hidden = c.satisfaction == null;
  $("score").textContent = c.satisfaction ?? "";
  $("waiting").hidden = c.can_rate || c.satisfaction != null || c.state === "void";
}

async function load() {
  try {
    const r = await fetch(api);
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      showError(residentErrorText(r.status, body));
      return;
    }
    show(body);
  } catch {
    showError(t("error.network"));
  }
}

document.querySelector(".stars").addEventListener("click", async (e) => {
  const score = Number(e.target.dataset.score);
  if (!score) return;
  try {
    const r = await fetch(`${api}/rating`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ satisfaction: score, comment: $("comment").value }),
    });
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      showError(r.status === 409 ? t("error.rate_closed") : residentErrorText(r.status, body));
      return;
    }
    showError("");
    show(body);
  } catch {
    showError(t("error.network"));
  }
});

load();

// The wall's detail panel: an alert, a ticket row, a camera on the map or in the list opens one
// place with everything about it: the full-size evidence with the zone and boxes drawn, the alert
// clips (appearing when the websocket says one was stored), the camera live, the case's history
// newest first, before/after photos, the assignee with a tel: link, and the actions the ticket
// state machine gives the operator (the center's allowed_actions, never a list of our own).
// A modal <dialog>: Esc and the close button close it, focus goes back where it came from.
import { h } from "./dom.js";
import { errorText } from "./errors.js";
import { fmtDateTime, fmtTime, parseTime } from "./format.js";
import { API, getJSON, postJSON } from "./http.js";
import { COLON, t } from "./i18n.js";
import { actionName, actorName, noteText } from "./ledger.js";
import { me } from "./session.js";
import { signedHref, signedImg, signUrl } from "./signed-urls.js";
import { cameraStateName, eventName, isOpenTicket, sourceName, stateName } from "./vocabulary.js";
import "./staff-words.js";
import "./wall-words.js";
import { cameraSetup, findAlert, latestAlert, liveWord, playLive, zonesOf } from "./wall-cameras.js";
import { fitStage, zoneOverlay } from "./zone-overlay.js";
import { addPatrol } from "./wall-patrol.js";
import { simulatedBadge } from "./simulated-badge.js";

// Actions that need a reason, and those that need a person (as in the leader view). "rate" is
// the resident's score (1-5, the public page): the actions API takes none, so it is not offered.
// hand_off, escalate and urge (issue 15's) come from the state table like every other action.
const NEEDS_NOTE = new Set(["void", "rework", "escalate"]);
const NEEDS_PERSON = new Set(["dispatch", "reassign"]);
const NOT_HERE = new Set(["rate"]);
const CASE_RELOAD_MS = 300;

let workers = null; // GET /workers, once
let people = new Map(); // id -> name of everyone (the ledger names workers too), from GET /people

async function loadWorkers() {
  workers ??= getJSON(`${API}/workers`).catch(() => []);
  return workers;
}

async function loadPeople() {
  if (people.size) return;
  try {
    people = new Map((await getJSON(`${API}/people`)).map((p) => [p.id, p.name]));
  } catch {
    // names fall back to the wall's (staff, cameras), else ids
  }
}

/** A clip's address for <video src>: the center hands it signed; a bare path gets signed here. */
const clipSrc = (url) => (/[?&]sig=/.test(url) ? Promise.resolve(url) : signUrl(url));

export class DetailPanel {
  /**
   * `dialog`: the page's <dialog>; `wall`: the wall's state ({alerts, tickets, cameras} maps)
   * and `nameOf(id)` for people and cameras.
   */
  constructor(dialog, { state, nameOf }) {
    this.dialog = dialog;
    this.state = state;
    this.nameOf = (id) => people.get(id) ?? nameOf(id);
    this.seq = 0;
    this.subject = null; // {cameraId, alert, ticketId, opener}
    this.stopLive = null;
    this.live = null; // {cameraId, zoneId, section} of the live view playing
    this.clipBoxes = new Map(); // alert id -> the clip list element shown for it
    this.caseTimer = null;
    dialog.addEventListener("close", () => this._closed());
    // A click on the backdrop (outside the panel's box) closes it, as Esc does.
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) dialog.close();
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  openAlert(alertId, opener = null) {
    const alert = this.state.alerts.get(alertId);
    if (!alert) return;
    this._open({ cameraId: alert.camera_id, alert, ticketId: alert.ticket_id ?? null, opener });
  }

  openTicket(ticketId, opener = null) {
    // The case's picture is its last alert's (from the feed here, else found once the ticket
    // is loaded: _completeMedia); a closed case is not in the wall's open tickets at all.
    const ticket = this.state.tickets.get(String(ticketId));
    const alert = ticket?.last_alert_id ? this.state.alerts.get(ticket.last_alert_id) ?? null : null;
    this._open({ cameraId: ticket?.camera_id ?? null, alert, ticketId: Number(ticketId), opener });
  }

  async openCamera(cameraId, opener = null) {
    const id = String(cameraId);
    const fromFeed = [...this.state.alerts.values()]
      .filter((a) => String(a.camera_id) === id)
      .sort((a, b) => (parseTime(b.started_at)?.getTime() ?? 0) - (parseTime(a.started_at)?.getTime() ?? 0))[0];
    const openCase = [...this.state.tickets.values()].filter((x) => String(x.camera_id) === id).sort((a, b) => b.id - a.id)[0];
    const seq = this._open({ cameraId: id, alert: fromFeed ?? null, ticketId: openCase?.id ?? null, opener });
    if (fromFeed) return;
    const alert = await latestAlert(id).catch(() => null);
    if (!alert || seq !== this.seq) return;
    this.subject.alert = alert;
    this._renderMedia(); // the live view already playing stays
    if (this.subject.ticketId == null && alert.ticket_id != null) {
      this.subject.ticketId = alert.ticket_id;
      this.dialog.dataset.ticketId = String(alert.ticket_id);
      this._loadCase(seq);
    }
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** A clip was stored (websocket "clip"): show it if its alert is on the panel. */
  onClip(clip) {
    const box = this.clipBoxes.get(clip?.alert_id);
    if (box) this._addClip(box, clip);
  }

  /** A ticket changed (websocket "ticket"): reload the case shown, once the burst is over. */
  onTicket(ticket) {
    if (!this.isOpen || ticket?.id == null || Number(ticket.id) !== this.subject?.ticketId) return;
    clearTimeout(this.caseTimer);
    this.caseTimer = setTimeout(() => this._loadCase(this.seq), CASE_RELOAD_MS);
  }

  // --- building ---------------------------------------------------------------------------

  _open(subject) {
    this._stopLive();
    this.seq += 1;
    this.subject = subject;
    this._render();
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector(".detail-close")?.focus();
    return this.seq;
  }

  _render() {
    const seq = this.seq;
    const s = this.subject;
    const camera = this.state.cameras.get(String(s.cameraId));
    const title = s.alert
      ? eventName(s.alert.event_type, s.alert.event_name)
      : s.ticketId != null
        ? `#${s.ticketId}`
        : camera?.name || s.cameraId || "";
    this.mediaEl = h("div", { class: "detail-media" });
    this.caseEl = h("div", { class: "detail-case", "data-testid": "detail-case" });
    this.dialog.dataset.ticketId = s.ticketId ?? "";
    this.dialog.replaceChildren(
      h(
        "header",
        { class: "detail-head" },
        h("h2", { id: "detail-title" }, title, simulatedBadge(s.alert), h("span", { class: "detail-where" }, camera?.name || s.cameraId || "")),
        h("button", { type: "button", class: "detail-close", "data-testid": "detail-close", "aria-label": t("wall.detail.close"), onclick: () => this.close() }, "×"),
      ),
      h("div", { class: "detail-body" }, this.mediaEl, this.caseEl),
    );
    this.dialog.setAttribute("aria-labelledby", "detail-title");
    this._renderMedia();
    this._loadCase(seq);
  }

  /** Evidence, live and clips; a live view of the same camera keeps playing (no second ask). */
  _renderMedia() {
    const s = this.subject;
    this.clipBoxes.clear();
    this.dialog.dataset.cameraId = s.cameraId ?? "";
    this.dialog.dataset.alertId = s.alert?.alert_id ?? "";
    const zoneId = s.alert?.zone_id ?? null;
    let live = null;
    if (s.cameraId && this.live?.cameraId === s.cameraId && this.live.zoneId === zoneId) {
      live = this.live.section;
    } else {
      this._stopLive();
      live = s.cameraId ? this._liveSection(s.cameraId, zoneId) : null;
    }
    this.mediaEl.replaceChildren(
      ...[this._evidenceSection(s.alert, s.cameraId, s.casePicture), live, this._clipsSection(s.alert)].filter(Boolean),
    );
  }

  /**
   * What the ticket tells once loaded and the opener did not know: its camera, its last alert
   * (for the picture, the zone and the clips), or for a hand-reported case the photo it was
   * filed with. Once per panel: a case that changes keeps its media (and its live view) playing.
   */
  async _completeMedia(full, seq) {
    const s = this.subject;
    if (s.alert || s.casePicture || s.completed) return;
    s.completed = true;
    const camera = s.cameraId ?? full.camera_id ?? null;
    const alert = full.last_alert_id && camera ? await findAlert(full.last_alert_id, camera).catch(() => null) : null;
    if (seq !== this.seq) return;
    if (!alert && !full.snapshot_url && camera === s.cameraId) return;
    s.cameraId = camera;
    s.alert = alert;
    s.casePicture = alert ? null : full.snapshot_url;
    this._renderMedia();
  }

  _evidenceSection(alert, cameraId, casePicture = null) {
    const stage = h("div", { class: "media-stage", "data-testid": "detail-evidence" });
    const section = h("section", { class: "detail-evidence" }, h("h3", {}, t("wall.detail.evidence")), stage);
    const picture = alert?.snapshot_url ?? null;
    const show = (url, zoneId, boxes) => {
      const img = signedImg(url, { class: "media-img", alt: t("wall.detail.evidence") }, (el) =>
        el.replaceWith(h("p", { class: "detail-empty" }, t("wall.detail.no_evidence"))));
      fitStage(stage, img);
      stage.append(img);
      zonesOf(cameraId, zoneId).then((zones) => stage.append(zoneOverlay({ zones, zoneId, boxes })));
    };
    if (picture) {
      show(picture, alert.zone_id, [alert.bbox]);
      stage.dataset.alertId = alert.alert_id;
      section.append(h("p", { class: "detail-caption" },
        `${fmtDateTime(alert.started_at)} · ${t("wall.detail.zone")} ${alert.zone_id ?? "—"}${Number.isFinite(Number(alert.score)) ? ` · ${Math.round(Number(alert.score) * 100)}%` : ""}`));
    } else if (casePicture) {
      show(casePicture, null, []); // a hand-reported case: the photo it was filed with
    } else if (cameraId) {
      // No alert: the camera's latest frame as its edge sends it, with its zones.
      cameraSetup().then((setup) => {
        if (!stage.isConnected) return;
        const cam = setup.get(String(cameraId));
        if (cam?.frame_url) show(`${cam.frame_url}?t=${encodeURIComponent(cam.frame_at)}`, null, []);
        else stage.replaceWith(h("p", { class: "detail-empty" }, t("wall.detail.no_evidence")));
      });
    } else {
      stage.replaceWith(h("p", { class: "detail-empty" }, t("wall.detail.no_evidence")));
    }
    return section;
  }

  _liveSection(cameraId, zoneId) {
    const video = h("video", { class: "media-video", muted: true, autoplay: true, playsinline: true, "data-testid": "detail-live" });
    video.muted = true; // the attribute alone does not mute a video made by script
    const status = h("p", { class: "live-state", "data-testid": "detail-live-state", dataset: { state: "starting" } }, liveWord("starting"));
    const stage = h("div", { class: "media-stage is-live" }, video);
    fitStage(stage, video);
    addPatrol(stage, video, cameraId);
    zonesOf(cameraId, zoneId).then((zones) => stage.append(zoneOverlay({ zones, zoneId })));
    const section = h("section", { class: "detail-live" }, h("h3", {}, t("wall.detail.live")), stage, status);
    this.live = { cameraId, zoneId, section };
    this.stopLive = playLive(video, cameraId, (state, detail) => {
      status.dataset.state = state;
      status.textContent = liveWord(state);
      status.title = detail ?? ""; // the center's English detail: a tooltip on the Chinese wall
      stage.dataset.state = state;
    });
    return section;
  }

  _clipsSection(alert) {
    if (!alert) return null;
    const box = h("div", { class: "detail-clips", "data-testid": "detail-clips", dataset: { alertId: alert.alert_id } },
      h("p", { class: "detail-empty no-clip", "data-testid": "no-clip" }, t("wall.detail.no_clip")));
    this.clipBoxes.set(alert.alert_id, box);
    getJSON(`${API}/alerts/${encodeURIComponent(alert.alert_id)}/clips`).then(
      (clips) => clips.forEach((clip) => this._addClip(box, { ...clip, alert_id: alert.alert_id })),
      (err) => {
        if (err.status === 404 || err.status === 405) return; // no clips route on this center: "no clip yet" stays
        box.querySelector(".no-clip").textContent = `${t("wall.detail.clips_failed")}${COLON}${err.message}`;
      },
    );
    return h("section", { class: "detail-clips-section" }, h("h3", {}, t("wall.detail.clips")), box);
  }

  _addClip(box, clip) {
    if (!clip?.clip_id || box.querySelector(`[data-clip-id="${CSS.escape(clip.clip_id)}"]`)) return;
    box.querySelector(".no-clip")?.remove();
    const video = h("video", { controls: true, preload: "metadata", class: "clip-video", "data-testid": "clip-video" });
    clipSrc(clip.url).then((src) => (video.src = src), () => {});
    const kind = clip.kind === "end" ? "end" : "violation";
    box.append(h("figure", { class: "clip", dataset: { clipId: clip.clip_id, kind } },
      video,
      h("figcaption", {}, `${t(`wall.detail.clip.${kind}`)} · ${fmtTime(clip.started_at)}–${fmtTime(clip.ended_at)}`)));
  }

  // --- the case -----------------------------------------------------------------------------

  async _loadCase(seq) {
    const s = this.subject;
    if (s.ticketId == null) {
      this.caseEl.replaceChildren(this._cameraFacts(), h("p", { class: "detail-empty", "data-testid": "detail-no-case" }, t("wall.detail.no_case")));
      return;
    }
    let full;
    try {
      full = await getJSON(`${API}/tickets/${s.ticketId}?${new URLSearchParams(me ? { as: me.id } : {})}`);
    } catch (err) {
      if (seq === this.seq) this.caseEl.replaceChildren(h("p", { class: "detail-empty" }, `${t("wall.detail.load_failed")}${COLON}${err.message}`));
      return;
    }
    await loadPeople();
    if (seq !== this.seq) return;
    this._completeMedia(full, seq);
    this.caseEl.dataset.state = full.state;
    this.caseEl.replaceChildren(
      this._caseFacts(full),
      this._actions(full),
      this._photos(full),
      this._history(full),
    );
  }

  _cameraFacts() {
    const cam = this.state.cameras.get(String(this.subject.cameraId));
    if (!cam) return null;
    return h("dl", { class: "detail-facts" },
      h("dt", {}, t("wall.detail.camera")), h("dd", {}, cam.name || cam.id),
      h("dt", {}, t("wall.detail.camera_state")), h("dd", { dataset: { state: cam.state } }, cameraStateName(cam.state), cam.detail ? ` · ${cam.detail}` : ""));
  }

  _caseFacts(x) {
    const who = x.assignee_id ? x.assignee_name || actorName(x.assignee_id, this.nameOf) : "—";
    const phone = x.assignee_phone;
    return h("section", { class: "detail-case-head" },
      h("h3", {}, `${t("wall.detail.case")} #${x.id} `,
        h("span", { class: `badge state-${x.state}`, "data-testid": "detail-state", dataset: { state: x.state } }, stateName(x.state)),
        x.overdue ? h("span", { class: "detail-overdue" }, t("wall.map.overdue")) : null,
        simulatedBadge(x)),
      h("dl", { class: "detail-facts" },
        h("dt", {}, t("wall.col.type")), h("dd", {}, eventName(x.event_type, x.event_name)),
        h("dt", {}, t("wall.detail.source")), h("dd", {}, sourceName(x.source)),
        h("dt", {}, t("wall.col.grid")), h("dd", {}, x.micro_grid_name || x.micro_grid_id || "—"),
        h("dt", {}, t("wall.detail.opened")), h("dd", {}, fmtDateTime(x.opened_at)),
        h("dt", {}, t("wall.detail.due")), h("dd", {}, fmtDateTime(x.stage_due_at || x.due_at) || "—"),
        h("dt", {}, t("wall.detail.assignee")),
        h("dd", { class: "detail-assignee", "data-testid": "detail-assignee" }, who,
          phone
            ? h("a", { class: "detail-tel", href: `tel:${phone.replace(/[^\d+]/g, "")}`, "data-testid": "detail-tel" }, `${t("wall.detail.call")} ${phone}`)
            : x.assignee_id ? h("span", { class: "detail-muted" }, t("wall.detail.no_phone")) : null),
        x.description ? [h("dt", {}, t("wall.detail.description")), h("dd", {}, x.description)] : null));
  }

  _actions(x) {
    const actions = (x.allowed_actions ?? []).filter((a) => !NOT_HERE.has(a));
    const section = h("section", { class: "detail-actions", "data-testid": "detail-actions" }, h("h3", {}, t("wall.detail.actions")));
    if (!isOpenTicket(x) && !actions.length) return null;
    if (!actions.length) {
      section.append(h("p", { class: "detail-muted" }, t("wall.detail.no_actions")));
      return section;
    }
    const { note, person } = this._fields();
    const withPerson = actions.filter((a) => NEEDS_PERSON.has(a));
    if (withPerson.length) {
      // The operator's own pick survives the case reloading under it; else the default.
      const preset = person.dataset.picked || (withPerson.includes("dispatch") ? x.owner_id : x.assignee_id);
      loadWorkers().then((list) => {
        const people = [...list];
        if (x.owner_id && !people.some((w) => w.id === x.owner_id)) people.unshift({ id: x.owner_id, name: this.nameOf(x.owner_id) ?? x.owner_id });
        person.replaceChildren(...people.map((w) => h("option", { value: w.id, selected: w.id === preset }, `${w.name}${w.micro_grid_name ? ` · ${w.micro_grid_name}` : ""}`)));
      });
    }
    const buttons = actions.map((a) => h("button", { type: "button", class: `detail-act act-${a}`, dataset: { action: a }, onclick: () => this._act(x, a, note, person, section) }, actionName(a)));
    section.append(
      h("div", { class: "detail-action-row" }, note, withPerson.length ? h("label", {}, t("wall.detail.to"), " ", person) : null),
      h("div", { class: "detail-action-row" }, ...buttons),
    );
    return section;
  }

  /**
   * The note and the person picker, made once per panel: a live update of the case rebuilds the
   * actions around the same elements, so what the operator typed or picked is not lost.
   */
  _fields() {
    if (!this.subject.fields) {
      const person = h("select", { class: "detail-person", "data-testid": "detail-person", "aria-label": t("wall.detail.to") });
      person.addEventListener("change", () => (person.dataset.picked = person.value));
      this.subject.fields = {
        note: h("input", { type: "text", class: "detail-note", maxlength: "2000", placeholder: t("wall.detail.note"), "aria-label": t("wall.detail.note") }),
        person,
      };
    }
    return this.subject.fields;
  }

  /**
   * Take `action` on the case. A refusal is said inside the panel: the page's error banner lies
   * under the modal panel (inert, behind its backdrop) where nobody would see it.
   */
  async _act(x, action, noteEl, personEl, section) {
    const note = noteEl.value.trim();
    const say = (text) => {
      section.querySelector(".detail-error")?.remove();
      section.append(h("p", { class: "detail-error", role: "alert", "data-testid": "detail-error" }, `${actionName(action)} #${x.id}${COLON}${text}`));
    };
    if (NEEDS_NOTE.has(action) && !note) {
      noteEl.focus();
      say(t("wall.detail.note_needed"));
      return;
    }
    const body = { action, note };
    if (NEEDS_PERSON.has(action) && personEl.value) body.assignee_id = personEl.value;
    for (const b of section.querySelectorAll("button")) b.disabled = true;
    try {
      await postJSON(`${API}/tickets/${x.id}/actions`, body);
    } catch (err) {
      const { text, detail } = errorText(err);
      for (const b of section.querySelectorAll("button")) b.disabled = false;
      say(detail ? `${text} (${detail})` : text);
      return; // the panel keeps the note and the pick for another try
    }
    noteEl.value = "";
    delete personEl.dataset.picked;
    await this._loadCase(this.seq);
  }

  /** Before (the evidence, the photo it was filed with) and after (the handling's photos). */
  _photos(x) {
    const after = new Set((x.events ?? []).filter((e) => e.action === "resolve").flatMap((e) => e.attachments ?? []));
    const photos = x.photos ?? [];
    const before = [x.snapshot_url, ...photos.map((p) => p.url).filter((u) => !after.has(u))].filter((u, i, all) => u && all.indexOf(u) === i);
    const strip = (urls, testid) => h("div", { class: "detail-photo-strip", "data-testid": testid }, ...urls.map((url) =>
      signedHref(h("a", { target: "_blank", rel: "noopener" }, signedImg(url, { alt: "", loading: "lazy" })), url)));
    return h("section", { class: "detail-photos" },
      h("div", {}, h("h3", {}, t("wall.detail.before")), before.length ? strip(before, "detail-before") : h("p", { class: "detail-muted" }, "—")),
      h("div", {}, h("h3", {}, t("wall.detail.after")), after.size ? strip([...after], "detail-after") : h("p", { class: "detail-muted" }, t("wall.detail.no_after"))));
  }

  /** The ledger, newest first (the center sends it in the order it was written). */
  _history(x) {
    const events = [...(x.events ?? [])].reverse();
    return h("section", { class: "detail-history" },
      h("h3", {}, t("wall.detail.history")),
      h("ol", { class: "detail-ledger", "data-testid": "detail-ledger" }, ...events.map((e) => h("li", { dataset: { action: e.action, at: e.at } },
        h("time", { datetime: e.at }, fmtDateTime(e.at)),
        h("strong", {}, actionName(e.action)),
        e.from_state && e.from_state !== e.to_state ? h("span", { class: "detail-move" }, `${stateName(e.from_state)} → ${stateName(e.to_state)}`) : null,
        h("span", { class: "detail-actor" }, actorName(e.actor_id, this.nameOf)),
        e.note ? h("div", { class: "detail-note-text" }, noteText(e, this.nameOf)) : null,
        e.attachments?.length ? h("div", { class: "detail-photo-strip" }, ...e.attachments.map((url) => signedImg(url, { alt: "", loading: "lazy" }))) : null))));
  }

  // --- closing ------------------------------------------------------------------------------

  _stopLive() {
    this.stopLive?.();
    this.stopLive = null;
    this.live = null;
  }

  _closed() {
    this._stopLive();
    clearTimeout(this.caseTimer);
    for (const v of this.dialog.querySelectorAll("video")) v.pause();
    const opener = this.subject?.opener;
    this.subject = null;
    this.clipBoxes.clear();
    this.seq += 1;
    // The feed and the table are re-rendered under the panel: focus the same item's new element.
    const target = typeof opener === "string" ? document.querySelector(opener) : opener?.isConnected ? opener : null;
    target?.focus?.();
  }
}

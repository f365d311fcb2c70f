// Video patrol (视频巡查) on the wall: grab the frame a live view shows, drag a box round what
// is wrong, pick the event type, add a note and file a case from it
// (POST /api/v1/cameras/{id}/patrol-cases; docs/video.md "Video patrol"). The center routes it
// by the camera's micro-grid like the camera's alerts and announces it, so it appears in the
// wall's open cases by the websocket like any other case.
// The HLS segments come from the center itself (same origin), so the canvas the frame is drawn
// on is not tainted and toBlob gives the JPEG; a tainted canvas would be said, not hidden.
import { h } from "./dom.js";
import { errorText } from "./errors.js";
import { API, postJSON } from "./http.js";
import { COLON, t } from "./i18n.js";
import "./patrol-words.js";
import { me } from "./session.js";
import { EVENT_CODES, eventName } from "./vocabulary.js";

const JPEG_QUALITY = 0.9;
/** Smaller than this (a fraction of the frame), a drag is a click: the box stays as it was. */
const MIN_BOX = 0.01;

/**
 * Put the "grab frame / 抓拍立案" button for the live `video` of `cameraId` on its `stage`
 * (over the picture's corner), with the line that says which case it filed. Not for engineers:
 * they read cases, they do not file them.
 */
export function addPatrol(stage, video, cameraId) {
  if (me?.role === "engineer") return;
  const said = h("span", { class: "patrol-filed", role: "status", "data-testid": "patrol-filed" });
  const button = h("button", { type: "button", class: "patrol-grab", "data-testid": "patrol-grab" }, t("patrol.grab"));
  button.addEventListener("click", (e) => {
    e.stopPropagation(); // a video wall tile opens the detail panel on a click
    grab(video, cameraId, (ticket) => {
      said.textContent = t("patrol.filed", { id: ticket.id });
      said.dataset.ticketId = String(ticket.id);
    });
  });
  stage.append(h("span", { class: "patrol" }, button, said));
}

/** The frame `video` shows now, on a canvas of its own size; null before the first frame. */
function frameOf(video) {
  if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || !video.videoWidth) return null;
  const canvas = h("canvas", { class: "patrol-frame", width: video.videoWidth, height: video.videoHeight, "data-testid": "patrol-frame" });
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return canvas;
}

function grab(video, cameraId, onFiled) {
  const canvas = frameOf(video);
  const status = h("p", { class: "patrol-status", role: "status", "data-testid": "patrol-status" });
  const dialog = h("dialog", { class: "patrol-dialog", "data-testid": "patrol-dialog", dataset: { cameraId } });
  dialog.addEventListener("close", () => dialog.remove());
  dialog.addEventListener("click", (e) => e.stopPropagation()); // not the detail panel's backdrop
  const cancel = h("button", { type: "button", class: "patrol-cancel", onclick: () => dialog.close() }, t("patrol.cancel"));
  document.body.append(dialog);
  if (!canvas) {
    status.textContent = t("patrol.no_frame");
    dialog.append(h("h2", {}, t("patrol.title")), status, h("div", { class: "patrol-actions" }, cancel));
    dialog.showModal();
    return;
  }
  let box = { x0: 0, y0: 0, x1: 1, y1: 1 }; // the whole frame until a box is drawn
  const boxEl = h("div", { class: "patrol-box", "data-testid": "patrol-box" });
  const stage = h("div", { class: "patrol-stage", "data-testid": "patrol-stage" }, canvas, boxEl);
  const showBox = () => {
    Object.assign(boxEl.style, {
      left: `${box.x0 * 100}%`, top: `${box.y0 * 100}%`,
      width: `${(box.x1 - box.x0) * 100}%`, height: `${(box.y1 - box.y0) * 100}%`,
    });
    stage.dataset.box = [box.x0, box.y0, box.x1, box.y1].map((v) => v.toFixed(4)).join(",");
  };
  dragBox(stage, (drawn) => {
    box = drawn;
    showBox();
  });
  showBox();
  const type = h("select", { class: "patrol-type", "data-testid": "patrol-type", required: true },
    h("option", { value: "" }, t("patrol.pick_type")),
    EVENT_CODES.map((code) => h("option", { value: code }, `${code} ${eventName(code)}`)));
  const note = h("textarea", { class: "patrol-note", "data-testid": "patrol-note", maxlength: "2000", rows: "2" });
  const file = h("button", { type: "submit", class: "patrol-file", "data-testid": "patrol-file" }, t("patrol.file"));
  const form = h("form", { class: "patrol-form", method: "dialog" },
    h("h2", {}, t("patrol.title")),
    h("p", { class: "patrol-hint" }, t("patrol.hint")),
    stage,
    h("label", {}, t("patrol.type"), type),
    h("label", {}, t("patrol.note"), note),
    status,
    h("div", { class: "patrol-actions" }, file, cancel));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!type.value) {
      status.textContent = t("patrol.pick_type");
      type.focus();
      return;
    }
    file.disabled = true;
    status.textContent = t("patrol.filing");
    try {
      const jpeg = await new Promise((resolve, reject) => {
        try {
          canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error(t("patrol.no_frame")))), "image/jpeg", JPEG_QUALITY);
        } catch (err) {
          reject(err); // SecurityError: a tainted canvas (video from another origin)
        }
      });
      const body = new FormData();
      body.append("frame", jpeg, `${cameraId}.jpg`);
      body.append("event_type", type.value);
      for (const [key, value] of Object.entries(box)) body.append(key, value.toFixed(4));
      body.append("note", note.value.trim());
      const ticket = await postJSON(`${API}/cameras/${encodeURIComponent(cameraId)}/patrol-cases`, body);
      dialog.close();
      onFiled(ticket);
    } catch (err) {
      const { text, detail } = errorText(err);
      status.textContent = detail ? `${text}${COLON}${detail}` : text;
      file.disabled = false;
    }
  });
  dialog.append(form);
  dialog.showModal();
  type.focus();
}

/** Drag a box over `stage`; `onBox({x0, y0, x1, y1})` in fractions of it (0..1). */
function dragBox(stage, onBox) {
  let start = null;
  const at = (e) => {
    const r = stage.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return { x: clamp((e.clientX - r.left) / r.width), y: clamp((e.clientY - r.top) / r.height) };
  };
  const boxTo = (e) => {
    const p = at(e);
    return { x0: Math.min(start.x, p.x), y0: Math.min(start.y, p.y), x1: Math.max(start.x, p.x), y1: Math.max(start.y, p.y) };
  };
  stage.addEventListener("pointerdown", (e) => {
    start = at(e);
    stage.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  stage.addEventListener("pointermove", (e) => {
    if (!start) return;
    const b = boxTo(e);
    if (b.x1 - b.x0 >= MIN_BOX && b.y1 - b.y0 >= MIN_BOX) onBox(b);
  });
  stage.addEventListener("pointerup", (e) => {
    if (!start) return;
    const b = boxTo(e);
    start = null;
    if (b.x1 - b.x0 >= MIN_BOX && b.y1 - b.y0 >= MIN_BOX) onBox(b);
  });
}

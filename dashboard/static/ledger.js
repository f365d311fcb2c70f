// A ticket's ledger in words: who did it (actorName), what (actionName) and the center's own
// notes (noteText: note_key / note_args from center/domain/ticket_notes.py).
import { LIST_SEP, t } from "./i18n.js";
import "./staff-words.js";
import "./handoff-words.js";

const ACTORS = new Set(["system", "resident", "public"]);

/**
 * Who did something, in words: a person's name (`nameOf(id)`), "摄像头 <camera name>" for a
 * camera (`camera:<id>`), "系统" for the center itself. An unknown id shows as it is.
 */
export function actorName(id, nameOf = () => null) {
  const s = String(id ?? "");
  if (s.startsWith("camera:")) return `${t("actor.camera")} ${nameOf(s.slice(7)) ?? s.slice(7)}`;
  if (ACTORS.has(s)) return t(`actor.${s}`);
  return nameOf(s) ?? s;
}

/**
 * A ledger note in the page's language: the center's own notes come with `note_key` and
 * `note_args` (center/domain/ticket_notes.py); a note a person typed is shown as written.
 */
export function noteText(entry, nameOf = () => null) {
  const args = entry.note_args || {};
  switch (entry.note_key) {
    case "routed":
      return t("note.routed", {
        person: nameOf(args.person) ?? args.person,
        post: `${t(`role.${args.role}`)}${args.post ? ` ${t(`post.${args.post}`)}` : ""}`,
      });
    case "escalated":
      return t("note.escalated", {
        level: args.level,
        reason: t(`note.reason.${args.reason}`),
        people: (args.people || []).map((id) => nameOf(id) ?? id).join(LIST_SEP) || t("note.nobody"),
      });
    case "video_patrol":
      return t("note.video_patrol", { person: nameOf(args.person) ?? args.person, camera: nameOf(args.camera) ?? args.camera });
    case null:
    case undefined:
      return entry.note || "";
    default:
      return t(`note.${entry.note_key}`);
  }
}

/** A ledger action's display name (unknown actions show as they are). */
export function actionName(action) {
  const key = `action.${action}`;
  const text = t(key);
  return text === key ? action : text;
}

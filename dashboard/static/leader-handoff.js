// The leader view's chain of command (docs/tickets.md "Hand-off, escalation by hand, urging"):
// hand a case to a line department (picked here; preset to the case's department, else the one
// handling its event type), a tel: link to call the assignee, and the department staff's own
// queue (the leader view filtered to the cases handed off to their department). The buttons
// themselves come from the center's allowed_actions like every other action (leader.js).
import { h } from "./dom.js";
import "./handoff-words.js";
import { t } from "./i18n.js";
import { actionName } from "./ledger.js";

/** The hand-off row: a department picker and the hand_off button, when the state allows it. */
export function handoffBlock(x, departments, act) {
  if (!(x.allowed_actions ?? []).includes("hand_off") || !departments.length) return null;
  // A live refresh redraws the case: the department already picked for it stays picked.
  const shown = document.getElementById("handoff-to");
  const picked = shown?.dataset.ticketId === String(x.id) ? shown.value : null;
  const preset = picked || x.department_id || x.department_default;
  const select = h(
    "select",
    { id: "handoff-to", "data-testid": "handoff-to", dataset: { ticketId: x.id } },
    ...departments.map((d) => h("option", { value: d.id, selected: d.id === preset }, d.name || d.id)),
  );
  return h(
    "div",
    { class: "reassign handoff" },
    h("label", {}, t("handoff.to"), " ", select),
    h("button", { type: "button", class: "act act-hand_off", dataset: { action: "hand_off" }, onclick: () => act("hand_off") }, actionName("hand_off")),
  );
}

/** The department a hand-off goes to, as picked. */
export const pickedDepartment = () => document.getElementById("handoff-to")?.value || null;

/** A tel: link to the assignee's phone (the center gives it to staff who follow cases up). */
export function callLink(phone) {
  if (!phone) return null;
  return h("a", { class: "tel-link", href: `tel:${phone.replace(/[^\d+]/g, "")}`, "data-testid": "assignee-tel" }, `${t("handoff.call")} ${phone}`);
}

/** Department staff's own queue: a filter of the list form, on by default (a reset too). */
export function mountQueueFilter(person) {
  const box = document.getElementById("f-dept");
  if (!box || person?.role !== "department_staff" || !person.department_id) return;
  box.closest("label").hidden = false;
  box.checked = box.defaultChecked = true;
}

/** The list query's department filter, while the department queue filter is on. */
export function queueQuery(q, person) {
  if (document.getElementById("f-dept")?.checked && person?.department_id) q.set("department_id", person.department_id);
}

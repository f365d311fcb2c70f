// The names of the center's ids, from the center itself (GET /api/v1/vocabulary,
// center/api/vocabulary.py): event types of this deployment's table, ticket states and which
// are open, the state machine's transitions, ticket sources, camera states, rule types with their
// classes, verdicts' false-alarm reasons. The pages keep no copy of their own (copies drifted
// from the center's table before). Fetched once per page load: the module waits for it
// (top-level await), so every importer can name ids synchronously.
// Offline (the phone), the last copy this browser saw is used; with none, ids show as they are
// (an event type falls back to the name the server sent with the record).
import { LANG } from "./i18n.js";

const STORE_KEY = "gridwatch.vocabulary";
const EMPTY = { event_types: [], states: [], transitions: [], sources: [], camera_states: [], rule_types: [], classes: [], verdict_reasons: [] };

async function load() {
  try {
    const response = await fetch("/api/v1/vocabulary", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (response.ok) {
      const fresh = await response.json();
      localStorage.setItem(STORE_KEY, JSON.stringify(fresh));
      return fresh;
    }
  } catch {
    // offline: the stored copy below
  }
  try {
    return { ...EMPTY, ...JSON.parse(localStorage.getItem(STORE_KEY) || "{}") };
  } catch {
    return EMPTY;
  }
}

const VOCABULARY = await load();

const byId = (list, key = "id") => new Map(list.map((item) => [item[key], item]));
const EVENT_TYPES = byId(VOCABULARY.event_types, "code");
const STATES = byId(VOCABULARY.states);
const SOURCES = byId(VOCABULARY.sources);
const CAMERA_STATES = byId(VOCABULARY.camera_states);
const RULE_TYPES = byId(VOCABULARY.rule_types);
const CLASSES = byId(VOCABULARY.classes);
const VERDICT_REASONS = byId(VOCABULARY.verdict_reasons);

const named = (table, id) => table.get(id)?.[LANG];

/** The event codes of the center's table, in its order (filters, legends, the report form). */
export const EVENT_CODES = VOCABULARY.event_types.map((e) => e.code);
/** The ticket states, in the state machine's order. */
export const STATE_IDS = VOCABULARY.states.map((s) => s.id);
/** The rule types an edge zone may have, in the edge config model's order. */
export const RULE_TYPE_IDS = VOCABULARY.rule_types.map((r) => r.id);
/** Why a false alarm was one (center/services/verdicts.py), in the center's order. */
export const VERDICT_REASON_IDS = VOCABULARY.verdict_reasons.map((r) => r.id);

/** An event type's name; a code the table lacks falls back to the server's `fallback`, then the code. */
export const eventName = (code, fallback) => named(EVENT_TYPES, code) ?? fallback ?? code ?? "";
export const stateName = (state) => named(STATES, state) ?? state ?? "";
/** Where a case came from (a ticket's `source`). */
export const sourceName = (source) => named(SOURCES, source) ?? source ?? "";
export const cameraStateName = (state) => named(CAMERA_STATES, state) ?? state ?? "";
export const ruleTypeName = (type) => named(RULE_TYPES, type) ?? type ?? "";
export const detectorClassName = (name) => named(CLASSES, name) ?? name ?? "";
export const verdictReasonName = (reason) => named(VERDICT_REASONS, reason) ?? reason ?? "";

/**
 * The case is still being worked (the center's OPEN states); once verified nobody needs to go
 * there, so screens treat it as done. A state the vocabulary lacks counts as open: shown, not lost.
 */
export const isOpenTicket = (ticket) => STATES.get(ticket.state)?.open !== false;

const TRANSITIONS = new Map(VOCABULARY.transitions.map((x) => [`${x.from} ${x.action}`, x]));

/** The state `action` leads to from `state` for `role` (the center's state machine), else null. */
export function nextState(state, action, role) {
  const rule = TRANSITIONS.get(`${state} ${action}`);
  return rule && rule.roles.includes(role) ? rule.to : null;
}

/** The actions `role` may take in `state`, in the state machine's order (the buttons a page shows). */
export const actionsFor = (state, role) =>
  VOCABULARY.transitions.filter((x) => x.from === state && x.roles.includes(role)).map((x) => x.action);

/** The classes a rule type accepts, and those it uses when a zone names none. */
export const ruleClasses = (type) => RULE_TYPES.get(type)?.classes ?? [];
export const ruleDefaultClasses = (type) => RULE_TYPES.get(type)?.default_classes ?? [];

// Open cases on the wall's map (docs/map.md, issue 15): a pin at each case's place (the ticket's
// own lon/lat, else its camera's: the ticket view gives both), coloured by where the case is in
// its loop (new, dispatched, in hand, to verify) with a red ring and "!" once it is late (past
// its stage's or its own time limit: center/domain/time_limits.py; the view's `overdue` says so
// when it was sent, the deadlines say so since). Pins closer than CLUSTER_REM on screen show as
// one counted pin in the colour of the worst case it holds, red when one of them is late; a
// click on a pin opens the wall's detail panel, on a cluster zooms to its cases.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { parseTime } from "./format.js";
import { t } from "./i18n.js";
import { eventName, stateName } from "./vocabulary.js";
import { groupByCell, rem } from "./wall-map-cluster.js";
import "./map-words.js";

/**
 * Where a case is in its loop, as the map tells it apart, worst (most in need) first: new (given
 * to nobody: not dispatched yet, or returned), assigned (dispatched to a person or handed to a
 * department), in hand (accepted), to verify (handled). Read from the ticket's own times, which
 * the state machine sets (center/domain/ticket_states.py): a page keeps no copy of the states.
 */
export const CASE_KINDS = ["new", "assigned", "in_hand", "to_verify"];
// The state badges' colours (style.css), so a pin and its row in the tickets table agree.
export const CASE_COLORS = {
  new: "var(--st-registered)", assigned: "var(--st-dispatched)", in_hand: "var(--st-accepted)",
  to_verify: "var(--st-handled)", late: "#ef4444",
};
const CLUSTER_REM = 2.2; // the cameras' rule (wall-map.js)

/** The kind of a case: its latest step among dispatched, accepted and handled (a rework or a
 * reassignment dispatches it again: the dispatch is then the latest). */
export function caseKind(ticket) {
  if (!ticket.assignee_id && !ticket.department_id) return "new";
  const at = (x) => parseTime(x)?.getTime() ?? -Infinity;
  const latest = Math.max(at(ticket.dispatched_at), at(ticket.accepted_at), at(ticket.handled_at));
  if (ticket.handled_at && at(ticket.handled_at) === latest) return "to_verify";
  if (ticket.accepted_at && at(ticket.accepted_at) === latest) return "in_hand";
  return "assigned";
}

/** Past a time limit now: the view said so when sent, or a deadline it carries has passed since. */
export function isLate(ticket, now = Date.now()) {
  if (ticket.overdue) return true;
  return [ticket.stage_due_at, ticket.due_at].some((at) => {
    const due = parseTime(at);
    return !!due && due.getTime() < now;
  });
}

const placeOf = (ticket) => [ticket.lat, ticket.lon];
const severity = (ticket, late) => (late.has(ticket.id) ? -1 : CASE_KINDS.indexOf(caseKind(ticket)));

export class CaseLayer {
  constructor(map, { onCase = null } = {}) {
    this.map = map;
    this.onCase = onCase;
    this.layer = L.layerGroup().addTo(map);
    this.tickets = []; // open tickets with a place
    this.late = new Set(); // ids of the late ones, as last drawn
    map.on("zoomend", () => this.render());
  }

  /** Draw these open tickets (those without a place are not on the map). */
  setTickets(tickets) {
    this.tickets = [...tickets].filter((x) => x.lat != null && x.lon != null);
    this.render();
  }

  /** True when a case became late (or stopped being) since the last drawing: time to redraw. */
  lateChanged(now = Date.now()) {
    const late = this.tickets.filter((x) => isLate(x, now)).map((x) => x.id);
    return late.length !== this.late.size || late.some((id) => !this.late.has(id));
  }

  render() {
    const el = this.map.getContainer();
    this.layer.clearLayers();
    this.late = new Set(this.tickets.filter((x) => isLate(x)).map((x) => x.id));
    const groups = el.clientWidth
      ? groupByCell(this.map, this.tickets, CLUSTER_REM * rem(), placeOf)
      : this.tickets.map((x) => [x]);
    let clusters = 0;
    for (const group of groups) {
      group.sort((a, b) => severity(a, this.late) - severity(b, this.late) || b.id - a.id);
      if (group.length === 1) this._pin(group[0]);
      else {
        this._cluster(group);
        clusters += 1;
      }
    }
    el.dataset.cases = String(this.tickets.length);
    el.dataset.caseClusters = String(clusters);
    el.dataset.lateCases = String(this.late.size);
  }

  _pin(ticket) {
    const late = this.late.has(ticket.id);
    const kind = caseKind(ticket);
    const title = [
      `#${ticket.id} ${eventName(ticket.event_type, ticket.event_name)}`,
      stateName(ticket.state),
      late ? t("map.case.late") : "",
      ticket.assignee_name || ticket.department_name || "",
    ].filter(Boolean).join(" · ");
    const pin = h(
      "span",
      {
        class: `case-pin case-${kind}${late ? " is-late" : ""}`,
        style: `--c: ${CASE_COLORS[kind]}`,
        title,
        dataset: { testid: "case-marker", ticketId: String(ticket.id), state: ticket.state, kind, late: String(late) },
      },
      h("span", { class: "case-pin-mark" }, late ? "!" : ""),
    );
    this._marker(ticket, pin, () => this.onCase?.(String(ticket.id)), title);
  }

  _cluster(group) {
    const worst = group[0]; // sorted worst first
    const late = group.filter((x) => this.late.has(x.id)).length;
    const kind = caseKind(worst);
    const title = `${t("map.case.cluster", { n: group.length })}${late ? ` · ${t("map.case.late")} ${late}` : ""}`;
    const pin = h(
      "span",
      {
        class: `case-pin case-cluster case-${kind}${late ? " is-late" : ""}`,
        style: `--c: ${late ? CASE_COLORS.late : CASE_COLORS[kind]}`,
        title,
        dataset: { testid: "case-cluster", count: String(group.length), kind, late: String(late), worst: String(worst.id) },
      },
      h("span", { class: "case-pin-mark" }, String(group.length)),
    );
    const bounds = L.latLngBounds(group.map(placeOf));
    const maxZoom = Math.min(this.map.getMaxZoom(), 19);
    // Zoom in until the cases come apart; cases at one spot never will: open the worst.
    const open = () => {
      if (this.map.getZoom() >= maxZoom - 0.01 || bounds.getNorthEast().equals(bounds.getSouthWest())) {
        this.onCase?.(String(worst.id));
      } else {
        this.map.fitBounds(bounds.pad(0.3), { animate: false, maxZoom });
      }
    };
    this._marker(worst, pin, open, title);
  }

  _marker(ticket, html, onClick, title) {
    const icon = L.divIcon({ className: "case-icon", html, iconSize: null });
    const marker = L.marker(placeOf(ticket), { icon, title, keyboard: true, riseOnHover: true, zIndexOffset: 500 });
    marker.on("click", onClick);
    marker.addTo(this.layer);
  }
}

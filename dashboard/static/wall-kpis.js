// The wall's KPI tiles say what they count: under "closure rate of cases due today" the counts
// it divides ("2 of 2 due closed"), so 100 % with cases still open cannot be misread, and the
// week-over-week and month-over-month change of each headline figure. The values themselves
// are wall.js's (setKpi); this module adds the lines under them from GET
// /indicators/headline (docs/indicators.md, "Headline").
import { h } from "./dom.js";
import { t } from "./i18n.js";
import "./kpi-words.js";

/** One small line under a tile's value, created on first use. */
function line(tileId, cls) {
  const tile = document.getElementById(tileId);
  if (!tile) return null;
  let el = tile.querySelector(`.${cls}`);
  if (!el) {
    el = h("div", { class: cls, "data-testid": `${tileId}-${cls}` });
    tile.append(el);
  }
  return el;
}

/** "▲5" / "▼12%" / "±0": the change of a count (relative when the previous period had any). */
function countChange(change, ratio) {
  if (change === null || change === undefined) return "—";
  const arrow = change > 0 ? "▲" : change < 0 ? "▼" : "±";
  const size = ratio === null || ratio === undefined ? Math.abs(change) : `${Math.round(Math.abs(ratio) * 100)}%`;
  return `${arrow}${size}`;
}

/** "▲5.0pp": a rate's change in percentage points (never a percent of a percent). */
function rateChange(change) {
  if (change === null || change === undefined) return "—";
  const arrow = change > 0 ? "▲" : change < 0 ? "▼" : "±";
  return `${arrow}${(Math.abs(change) * 100).toFixed(1)}${t("kpi.points")}`;
}

function tone(change, rate) {
  if (!rate || change === null || change === undefined || change === 0) return "flat";
  return change > 0 ? "up" : "down";
}

function trendLine(tileId, trends, field, rate) {
  const el = line(tileId, "kpi-trend");
  if (!el) return;
  const week = trends?.week;
  const month = trends?.month;
  const fmt = (p) => (rate ? rateChange(p?.change?.[field]) : countChange(p?.change?.[field], p?.change_ratio?.[field]));
  el.replaceChildren(
    h("span", { class: `trend trend-${tone(week?.change?.[field], rate)}`, "data-testid": "trend-week" }, `${t("kpi.wow")} ${fmt(week)}`),
    " · ",
    h("span", { class: `trend trend-${tone(month?.change?.[field], rate)}`, "data-testid": "trend-month" }, `${t("kpi.mom")} ${fmt(month)}`),
  );
  el.title = t("kpi.trend.title");
}

/** The lines under the cases-today, closure-rate and on-time-rate tiles. */
export function renderKpiDetails(body) {
  const today = body?.today ?? {};
  const trends = body?.trends;
  const n = (v) => (v === null || v === undefined ? "—" : String(v));
  const totals = line("kpi-cases-today", "kpi-sub");
  if (totals) totals.textContent = t("kpi.period_totals", { week: n(trends?.week?.current?.registered), month: n(trends?.month?.current?.registered) });
  const closed = line("kpi-closure-rate", "kpi-sub");
  if (closed) closed.textContent = t("kpi.closed_of_due", { closed: n(today.closed), due: n(today.due) });
  const onTime = line("kpi-on-time-rate", "kpi-sub");
  if (onTime) onTime.textContent = t("kpi.on_time_of_due", { on_time: n(today.on_time), due: n(today.due) });
  trendLine("kpi-cases-today", trends, "registered", false);
  trendLine("kpi-closure-rate", trends, "closure_rate", true);
  trendLine("kpi-on-time-rate", trends, "on_time_rate", true);
}

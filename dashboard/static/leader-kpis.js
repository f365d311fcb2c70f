// The leader view's headline figures (GET /indicators/headline, the leader's own area): the
// cases open and overdue now, and each headline figure today, this week and this month so far
// against the same stretch of the previous week and month, with the change. Names say what
// each figure counts (docs/indicators.md, "Headline").
import { h } from "./dom.js";
import { fmtDateTime, fmtRate } from "./format.js";
import { API, getJSON } from "./http.js";
import { t } from "./i18n.js";
import "./kpi-words.js";

const RATES = new Set(["closure_rate", "on_time_rate"]);

function value(field, v) {
  if (RATES.has(field)) return fmtRate(v);
  return v === null || v === undefined ? "—" : String(v);
}

function change(field, trend) {
  const d = trend?.change?.[field];
  if (d === null || d === undefined) return "—";
  const sign = d > 0 ? "+" : d < 0 ? "−" : "±";
  if (RATES.has(field)) return `${sign}${(Math.abs(d) * 100).toFixed(1)}${t("kpi.points")}`;
  const ratio = trend?.change_ratio?.[field];
  return ratio === null || ratio === undefined ? `${sign}${Math.abs(d)}` : `${sign}${Math.abs(d)} (${sign}${Math.round(Math.abs(ratio) * 100)}%)`;
}

/** Load and draw the headline figures into `el`; errors go to `onError`. */
export async function renderHeadline(el, onError) {
  let body;
  try {
    body = await getJSON(`${API}/indicators/headline`);
  } catch (err) {
    onError?.(err);
    return;
  }
  const { week, month } = body.trends ?? {};
  // The figures and their order are the API's (center/services/indicators.py, Figures).
  const figures = Object.keys(body.today ?? {}).filter((k) => k !== "from" && k !== "to");
  const cols = [
    ["kpi.headline.today", (f) => value(f, body.today?.[f])],
    ["kpi.headline.week", (f) => value(f, week?.current?.[f])],
    ["kpi.headline.prev_week", (f) => value(f, week?.previous?.[f])],
    ["kpi.headline.change", (f) => change(f, week)],
    ["kpi.headline.month", (f) => value(f, month?.current?.[f])],
    ["kpi.headline.prev_month", (f) => value(f, month?.previous?.[f])],
    ["kpi.headline.change", (f) => change(f, month)],
  ];
  el.replaceChildren(
    h(
      "div",
      { class: "headline-now" },
      h("span", { class: "headline-title" }, `${t("kpi.headline.title")} · ${body.scope?.name ?? ""}`),
      h("span", { "data-testid": "headline-open" }, `${t("kpi.headline.open_now")} ${body.now?.open ?? "—"}`),
      h("span", { "data-testid": "headline-overdue", class: body.now?.overdue ? "is-bad" : "" }, `${t("kpi.headline.overdue_now")} ${body.now?.overdue ?? "—"}`),
      h("span", { class: "muted" }, t("kpi.headline.as_of", { time: fmtDateTime(body.as_of) })),
    ),
    h(
      "div",
      { class: "list-wrap" },
      h(
        "table",
        { class: "list numbers", "data-testid": "headline-table", title: t("kpi.trend.title") },
        h("thead", {}, h("tr", {}, h("th", {}, t("kpi.headline.figure")), ...cols.map(([key]) => h("th", {}, t(key))))),
        h("tbody", {}, ...figures.map((f) => h("tr", { dataset: { figure: f } }, h("th", { scope: "row" }, t(`kpi.fig.${f}`)), ...cols.map(([, cell]) => h("td", {}, cell(f)))))),
      ),
    ),
  );
}

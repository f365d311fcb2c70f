// The 模拟 / SIMULATED badge: an alert made up by a simulator (the demo's synthetic stream draws
// random boxes on real frames), or a case such an alert opened, says so wherever it is shown
// (wall alert card, ticket row, detail panel, phone card), so nobody mistakes a made-up box for
// a detection. The center sets `simulated` from the wire (docs/protocol.md); a real edge never
// does. Its look is set here, not in a page's stylesheet, so every page that imports it shows
// the same badge.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import "./simulated-words.js";

const LOOK = {
  display: "inline-block",
  marginInlineStart: "0.4em",
  padding: "0 0.4em",
  border: "1px dashed #f5a623",
  borderRadius: "3px",
  color: "#f5a623",
  fontSize: "0.8em",
  fontWeight: "700",
  letterSpacing: "0.05em",
  lineHeight: "1.5",
  whiteSpace: "nowrap",
  verticalAlign: "middle",
};

/** The badge for an alert or ticket view with `simulated: true`; null for everything else. */
export function simulatedBadge(item) {
  if (item?.simulated !== true) return null;
  return h(
    "span",
    { class: "badge-simulated", "data-testid": "simulated-badge", title: t("simulated.title"), style: LOOK },
    t("simulated.badge"),
  );
}

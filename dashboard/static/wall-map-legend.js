// The wall map's legend: one line per symbol the map can show, in the map's corner. Sections
// for symbols another module adds (workers, hotspots, base layers) appear once that module's
// layer is on the map, so the legend never explains what the wall cannot show.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

import { h } from "./dom.js";
import { t } from "./i18n.js";
import "./map-words.js";

/** [key, swatch shape, colour]: shape is a CSS class (fill, ring, dot, line, dash...). */
export function legendEntries(colors) {
  return {
    areas: [
      ["area_none", "fill", colors.none],
      ["area_open", "fill", colors.open],
      ["area_overdue", "fill", colors.overdue],
      ["emergency", "dash", colors.emergency],
      ["micro_grid", "line", colors.micro],
    ],
    cameras: [
      ...["online", "offline", "frozen", "lagging", "unknown"].map((s) => [`cam_${s}`, "dot", colors.cam[s]]),
      ["cam_alerting", "dot", colors.alerting],
      ["cluster", "cluster", colors.cluster],
      ["pulse", "ring", colors.alerting],
    ],
    cases: [
      ...["new", "assigned", "in_hand", "to_verify"].map((k) => [`case_${k}`, "pin", colors.cases[k]]),
      ["case_late", "pin-late", colors.cases.assigned],
      ["case_cluster", "pin-cluster", colors.cases.late],
    ],
    workers: [
      ["worker", "dot", "#22d3ee"],
      ["worker_stale", "dot", "#64748b"],
    ],
    hotspots: [["hotspots", "heat", "#f97316"]],
    base: [
      ["road", "road", colors.road],
      ["building", "fill", colors.building],
      ["poi", "dot", colors.poi],
    ],
  };
}

export class MapLegend extends L.Control {
  constructor(colors) {
    super({ position: "bottomleft" });
    this.entries = legendEntries(colors);
    this.sections = new Map();
  }

  onAdd(map) {
    const box = h("div", { class: "map-key", dataset: { testid: "map-legend" } }, h("div", { class: "map-key-title" }, t("map.legend")));
    for (const [section, rows] of Object.entries(this.entries)) {
      const el = h(
        "ul",
        { class: "map-key-section", dataset: { section } },
        ...rows.map(([key, shape, color]) =>
          h("li", { dataset: { symbol: key } }, h("span", { class: `map-key-swatch swatch-${shape}`, style: `--c: ${color}` }), t(`map.legend.${key}`)),
        ),
      );
      el.hidden = !["areas", "cameras", "cases"].includes(section);
      this.sections.set(section, el);
      box.append(el);
    }
    L.DomEvent.disableClickPropagation(box);
    map.on("layeradd", this._onLayer, this);
    map.eachLayer((layer) => this._onLayer({ layer }));
    return box;
  }

  onRemove(map) {
    map.off("layeradd", this._onLayer, this);
  }

  /** Show a section: "workers", "hotspots", "base". */
  show(section) {
    const el = this.sections.get(section);
    if (el) el.hidden = false;
  }

  _onLayer({ layer }) {
    if (layer.options?.icon?.options?.className === "worker-icon") this.show("workers");
    if (layer.canvas?.classList?.contains("hotspot-canvas") || layer.options?.pane === "hotspots") this.show("hotspots");
  }
}

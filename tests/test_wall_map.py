"""The wall's map in Chromium (docs/map.md): an offline base that reads as a town, micro-grids
named at district zoom, a legend for every symbol, tiles from the configured source, clusters
for many cameras, and the GCJ-02 conversion for Chinese tile providers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser import new_page
from tests.conftest import RunningCenter
from tests.waiting import wait_until
from wire.paths import DEFAULTS_DIR, REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
DEMO_LAYERS = DEFAULTS_DIR / "district" / "layers"


def _wall(browser: Browser, center: RunningCenter,
          ready: str = "#map path.cam-marker") -> tuple[Page, list[str]]:
    page, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    page.goto(center.url + "/wall")
    expect(page.locator(ready).first).to_be_attached(timeout=10_000)
    return page, errors


def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    return [b for b in (el.bounding_box() for el in page.locator(selector).all()) if b]


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_offline_map_names_micro_grids_draws_the_town_and_explains_symbols(
        browser: Browser, center: RunningCenter) -> None:
    page, errors = _wall(browser, center)
    ARTIFACTS.mkdir(exist_ok=True)
    map_box = page.locator("#map").bounding_box()
    assert map_box
    # At the district zoom the page opens with: four micro-grid names and two grid names,
    # inside the map, none on another.
    micro = page.locator(".area-label-micro_grid")
    expect(micro).to_have_count(4)
    for label in micro.all():
        expect(label).to_be_visible()
    labels = _boxes(page, ".leaflet-tooltip.area-label")
    assert len(labels) == 6
    for box in labels:
        right, bottom = map_box["x"] + map_box["width"], map_box["y"] + map_box["height"]
        assert (map_box["x"] <= box["x"] and box["x"] + box["width"] <= right
                and map_box["y"] <= box["y"] and box["y"] + box["height"] <= bottom), box
    for i, a in enumerate(labels):
        assert not any(_overlap(a, b) for b in labels[i + 1:]), "area names overlap"
    # Camera dots sit clear of the names.
    cams = _boxes(page, "#map path.cam-marker")
    assert len(cams) == 5
    assert not [(c, lab) for c in cams for lab in labels if _overlap(c, lab)]
    # The demo's GeoJSON layers: 6 roads, 6 buildings, 5 POIs; no tiles (offline default).
    expect(page.locator("#map")).to_have_attribute("data-base", "layers")
    expect(page.locator("#map path.base-road")).to_have_count(6)
    expect(page.locator("#map path.base-building")).to_have_count(6)
    expect(page.locator("#map path.base-poi")).to_have_count(5)
    expect(page.locator("#map .map-tiles img")).to_have_count(0)
    # The legend names each symbol the map shows.
    legend = page.get_by_test_id("map-legend")
    expect(legend).to_be_visible()
    shown = {li.get_attribute("data-symbol")
             for li in legend.locator("li").all() if li.is_visible()}
    assert {"area_none", "area_open", "area_overdue", "emergency", "micro_grid", "cam_online",
            "cam_offline", "cam_frozen", "cam_lagging", "cam_unknown", "cam_alerting", "cluster",
            "pulse", "road", "building", "poi"} <= shown, shown
    page.screenshot(path=str(ARTIFACTS / "wall-map-offline-1920x1080.png"))
    assert errors == []


TILE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154"
    "789c6360f8cfc0f01f0005000201a5e9f3a40000000049454e44ae426082")


@pytest.mark.parametrize("center_settings", [
    {"map": {"tiles": "http://tiles.gridwatch.test/{z}/{x}/{y}.png", "attribution": "test tiles"}}],
    indirect=True)
def test_tile_source_setting_loads_tiles_from_its_template(browser: Browser,
                                                           center: RunningCenter) -> None:
    requested: list[str] = []

    def serve(route: Route) -> None:
        requested.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=TILE_PNG)

    page, errors = new_page(browser, 1920, 1080, center=center, person_id="op-01")
    page.context.route("http://tiles.gridwatch.test/**", serve)
    page.goto(center.url + "/wall")
    expect(page.locator("#map")).to_have_attribute("data-base", "tiles", timeout=10_000)
    wait_until(lambda: len(requested) >= 4, 10, "tile requests")
    pattern = re.compile(r"^http://tiles\.gridwatch\.test/(\d+)/(\d+)/(\d+)\.png$")
    zooms = set()
    for url in requested:
        m = pattern.match(url)
        assert m, url
        zooms.add(int(m[1]))
    # The demo district (~1.5 km wide) fills a 1920 px wall at about zoom 16.
    assert all(14 <= z <= 18 for z in zooms), zooms
    expect(page.locator("#map .map-tiles img").first).to_be_attached()
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("test tiles")
    assert errors == []  # the CSP lets the tile origin in (no refused-image errors)


@pytest.fixture
def center_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The demo district with the settings a test passes; "many_cameras": 150 cameras ~20 m apart
    grid across the district."""
    param = getattr(request, "param", {})
    if param != "many_cameras":
        return dict(param)
    source = DEFAULTS_DIR / "district"
    district = yaml.safe_load((source / "district.yaml").read_text(encoding="utf-8"))
    district["cameras"] = [
        {"id": f"cam-{i:03d}", "name": f"camera {i}", "edge_id": "edge-many",
         "lon": round(120.1505 + (i % 30) * 0.0002, 6),
         "lat": round(30.2703 + (i // 30) * 0.0002, 6)}
        for i in range(150)]
    (tmp_path / "grids.geojson").write_bytes((source / "grids.geojson").read_bytes())
    (tmp_path / "district.yaml").write_text(yaml.safe_dump(district, allow_unicode=True),
                                            encoding="utf-8")
    return {"district": tmp_path / "district.yaml", "map": {"layers_dir": DEMO_LAYERS}}


@pytest.mark.parametrize("center_settings", ["many_cameras"], indirect=True)
def test_many_cameras_show_as_counted_clusters_that_split_on_zoom(
        browser: Browser, center: RunningCenter) -> None:
    page, errors = _wall(browser, center, ready="#map .cam-cluster")
    counts = page.locator("#map .cam-cluster span")
    expect(counts.first).to_be_visible()
    singles = page.locator("#map path.cam-marker").count()
    clustered = sum(int(c.get_attribute("data-count") or 0) for c in counts.all())
    assert counts.count() >= 5 and singles + clustered == 150, (counts.count(), singles)
    assert page.locator("#map path.cam-marker").count() + counts.count() < 60
    before = counts.count()
    counts.first.click()
    wait_until(lambda: page.locator("#map path.cam-marker").count() > singles, 5,
               "a clicked cluster to zoom in and split")
    assert page.locator("#map .cam-cluster").count() != before or singles == 0
    assert errors == []


def test_gcj02_conversion_matches_the_reference_values(browser: Browser,
                                                       center: RunningCenter) -> None:
    """eviltransform's test vectors (github.com/googollee/eviltransform): WGS-84 -> GCJ-02
    exactly, GCJ-02 -> WGS-84 back within 1e-7 degrees (~1 cm); outside China unchanged."""
    page, _ = _wall(browser, center)
    vectors = [(31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
               (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
               (39.911954, 116.377817, 39.91334545536069, 116.38404722455657)]
    out = page.evaluate(
        """async (vectors) => {
             const g = await import("/static/gcj02.js");
             return {there: vectors.map(([a, b]) => g.wgsToGcj(a, b)),
                     back: vectors.map(([, , c, d]) => g.gcjToWgs(c, d)),
                     paris: g.wgsToGcj(48.8566, 2.3522)};
           }""", vectors)
    pairs = zip(vectors, out["there"], out["back"], strict=True)
    for (wlat, wlng, glat, glng), there, back in pairs:
        assert there == pytest.approx([glat, glng], abs=1e-9)
        assert back == pytest.approx([wlat, wlng], abs=1e-7)
    assert out["paris"] == [48.8566, 2.3522]


@pytest.mark.parametrize("center_settings", [{"map": {"datum": "gcj02"}}], indirect=True)
def test_gcj02_datum_draws_the_stored_wgs84_shifted_onto_gcj02_tiles(
        browser: Browser, center: RunningCenter) -> None:
    page, errors = _wall(browser, center)
    expect(page.locator(".area-label-micro_grid")).to_have_count(4)
    # The map projects through GCJ-02: a stored WGS-84 point lands ~500 m off plain Mercator
    # in Hangzhou, and clicking there gives the stored WGS-84 point back.
    shift = page.evaluate("""async () => {
        const L = await import("/vendor/leaflet/dist/leaflet-src.esm.js");
        const map = window.gridwatchWall.map.map;
        const here = L.latLng(30.2715, 120.152);
        const a = map.options.crs.project(here);
        const b = L.CRS.EPSG3857.project(here);
        const back = map.options.crs.unproject(a);
        return {code: map.options.crs.code, metres: a.distanceTo(b),
                back: [back.lat, back.lng]};
    }""")
    assert shift["code"] == "EPSG:3857-GCJ02"
    assert 300 < shift["metres"] < 800, shift
    assert shift["back"] == pytest.approx([30.2715, 120.152], abs=1e-7)
    assert errors == []

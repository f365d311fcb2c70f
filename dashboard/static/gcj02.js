// WGS-84 <-> GCJ-02 ("Mars coordinates"), for map tiles from Chinese providers that use it
// (AMap/Gaode, Tencent). gridwatch stores WGS-84; Tianditu (CGCS2000) and OSM need nothing.
// The well-known public algorithm on the Krasovsky 1940 ellipsoid, as in
// https://github.com/googollee/eviltransform (wgs2gcj; gcj2wgs by fixed-point iteration as its
// gcj2wgs_exact). Outside China's bounding box GCJ-02 is WGS-84. Accuracy: about 1 m.
import * as L from "/vendor/leaflet/dist/leaflet-src.esm.js";

const A = 6378245.0; // Krasovsky 1940 semi-major axis (m)
const EE = 0.00669342162296594323; // its first eccentricity squared

export function outOfChina(lat, lng) {
  return !(lng >= 72.004 && lng <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
}

function delta(lat, lng) {
  const x = lng - 105.0;
  const y = lat - 35.0;
  const s = 20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI);
  let dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (s * 2.0) / 3.0;
  dLat += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  dLat += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  let dLng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLng += (s * 2.0) / 3.0;
  dLng += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  dLng += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  const radLat = (lat / 180.0) * Math.PI;
  const magic = 1 - EE * Math.sin(radLat) ** 2;
  const sqrtMagic = Math.sqrt(magic);
  return [
    (dLat * 180.0) / (((A * (1 - EE)) / (magic * sqrtMagic)) * Math.PI),
    (dLng * 180.0) / ((A / sqrtMagic) * Math.cos(radLat) * Math.PI),
  ];
}

/** WGS-84 [lat, lng] -> GCJ-02 [lat, lng]. */
export function wgsToGcj(lat, lng) {
  if (outOfChina(lat, lng)) return [lat, lng];
  const [dLat, dLng] = delta(lat, lng);
  return [lat + dLat, lng + dLng];
}

/** GCJ-02 [lat, lng] -> WGS-84 [lat, lng]: iterate wgsToGcj until it lands within ~1 cm. */
export function gcjToWgs(lat, lng) {
  let [wLat, wLng] = [lat, lng];
  for (let i = 0; i < 30; i++) {
    const [gLat, gLng] = wgsToGcj(wLat, wLng);
    const [eLat, eLng] = [gLat - lat, gLng - lng];
    wLat -= eLat;
    wLng -= eLng;
    if (Math.abs(eLat) < 1e-9 && Math.abs(eLng) < 1e-9) break;
  }
  return [wLat, wLng];
}

/**
 * Web Mercator over GCJ-02: every layer keeps WGS-84 coordinates (workers, hotspots, cameras
 * need no change) and lands where GCJ-02 tiles draw the same place.
 */
export const GCJ02_CRS = L.Util.extend({}, L.CRS.EPSG3857, {
  code: "EPSG:3857-GCJ02",
  projection: {
    bounds: L.Projection.SphericalMercator.bounds,
    project(latlng) {
      const [lat, lng] = wgsToGcj(latlng.lat, latlng.lng);
      return L.Projection.SphericalMercator.project(L.latLng(lat, lng));
    },
    unproject(point) {
      const g = L.Projection.SphericalMercator.unproject(point);
      return L.latLng(...gcjToWgs(g.lat, g.lng));
    },
  },
});

"""The wall map's configuration and the deployment's GeoJSON layers (docs/map.md).

The tile source and the layers folder are center settings (``GRIDWATCH_MAP__*``); the page
reads them here instead of from its HTML so one setting serves every wall."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from center.api.deps import Actor
from center.platform.settings import CenterSettings

router = APIRouter(prefix="/api/v1", tags=["map"])

#: A layer is named by its file stem: letters, digits, dot, dash, underscore (no paths).
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def _layers_dir(settings: CenterSettings) -> Path:
    return settings.map.layers_dir or settings.district.parent / "layers"


def _layer_names(settings: CenterSettings) -> list[str]:
    folder = _layers_dir(settings)
    return sorted(p.stem for p in folder.glob("*.geojson") if _LAYER_NAME.match(p.stem)) \
        if folder.is_dir() else []


@router.get("/map", responses={401: {}})
async def map_config(request: Request, _: Actor) -> dict[str, Any]:
    """Tile source (null: offline, vectors only) and the GeoJSON layers to draw, in file-name
    order (a deployment orders them by name: ``10-roads``, ``20-buildings``...)."""
    settings: CenterSettings = request.app.state.settings
    m = settings.map
    tiles = None if not m.tiles else {
        "url": m.tiles, "subdomains": m.subdomains, "attribution": m.attribution,
        "max_zoom": m.max_zoom}
    return {"tiles": tiles, "datum": m.datum,
            "layers": [{"name": n, "url": f"/api/v1/map/layers/{n}"}
                       for n in _layer_names(settings)]}


@router.get("/map/layers/{name}", responses={401: {}, 404: {}, 422: {}})
async def map_layer(request: Request, name: str, _: Actor) -> Any:
    """One GeoJSON layer. A file that is not valid JSON is a 422 naming the file, so a broken
    layer is found without hiding the others."""
    settings: CenterSettings = request.app.state.settings
    if name not in _layer_names(settings):
        raise HTTPException(404, f"no map layer {name!r}")
    path = _layers_dir(settings) / f"{name}.geojson"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HTTPException(422, f"map layer {path.name}: {exc}") from None

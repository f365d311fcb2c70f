"""A district the size of one real town, generated from a seed, as the files the center imports.

``generate(out_dir)`` writes ``district.yaml`` + ``grids.geojson`` (the format of
``center/defaults/district/``): ``communities`` community grids laid out as blocks on a map,
each split into 3-4 micro-grids (``micro_grids`` in all), ``cameras`` cameras scattered inside
the micro-grids (one edge box per micro-grid), and per micro-grid an A-post worker (always on
duty), a B-post worker (07:00-23:00) and a leader; a leader per community, two line
departments and a duty operator. The same arguments always give byte-identical files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

ORIGIN = (120.10, 30.20)  # lon, lat of the town's south-west corner
BLOCK = (0.006, 0.005)  # one community, in degrees (about 600 m x 550 m)
COLUMNS = 9
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许"
             "韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程")
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏辉建国志强海燕"


def _spread(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` near-equal counts, the larger ones placed at random."""
    base, extra = divmod(total, parts)
    bigger = set(rng.sample(range(parts), extra))
    return [base + (i in bigger) for i in range(parts)]


def _rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def generate(out_dir: Path | str, communities: int = 45, micro_grids: int = 172,
             cameras: int = 1150, seed: int = 1) -> Path:
    """Write the district files into ``out_dir``; returns the path of ``district.yaml``."""
    if not communities <= micro_grids <= cameras:
        raise ValueError("need communities <= micro_grids <= cameras")
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def name() -> str:
        return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))

    features: list[dict[str, Any]] = []
    cams: list[dict[str, Any]] = []
    people: list[dict[str, Any]] = []
    micro_counts = _spread(micro_grids, communities, rng)
    camera_counts = _spread(cameras, micro_grids, rng)
    mg_no = cam_no = 0
    for g in range(communities):
        gid = f"g-{g + 1:02d}"
        gx = ORIGIN[0] + (g % COLUMNS) * BLOCK[0]
        gy = ORIGIN[1] + (g // COLUMNS) * BLOCK[1]
        features.append({"type": "Feature", "geometry": _rect(gx, gy, gx + BLOCK[0], gy + BLOCK[1]),
                         "properties": {"id": gid, "name": f"第{g + 1}社区 Community {g + 1}",
                                        "level": "grid"}})
        people.append({"id": f"gl-{g + 1:02d}", "name": name(), "role": "grid_leader",
                       "grid": gid})
        k = micro_counts[g]
        width = BLOCK[0] / k
        for m in range(k):
            mg_no += 1
            mid = f"mg-{mg_no:03d}"
            x0 = gx + m * width
            features.append({
                "type": "Feature", "geometry": _rect(x0, gy, x0 + width, gy + BLOCK[1]),
                "properties": {"id": mid,
                               "name": f"第{g + 1}社区第{m + 1}微网格 Micro-grid {mg_no}",
                               "level": "micro_grid", "parent": gid}})
            people += [
                {"id": f"w-{mg_no:03d}a", "name": name(), "role": "worker", "micro_grid": mid,
                 "post": "A"},
                {"id": f"w-{mg_no:03d}b", "name": name(), "role": "worker", "micro_grid": mid,
                 "post": "B", "duty": [{"start": "07:00", "end": "23:00"}]},
                {"id": f"l-{mg_no:03d}", "name": name(), "role": "micro_grid_leader",
                 "micro_grid": mid},
            ]
            for _ in range(camera_counts[mg_no - 1]):
                cam_no += 1
                # 10 % margin inside the strip, so point-in-polygon finds this micro-grid.
                lon = x0 + width * rng.uniform(0.1, 0.9)
                lat = gy + BLOCK[1] * rng.uniform(0.1, 0.9)
                cams.append({"id": f"cam-{cam_no:04d}", "name": f"Camera {cam_no}",
                             "lon": round(lon, 6), "lat": round(lat, 6),
                             "edge_id": f"edge-{mid}"})
    people += [
        {"id": "d-urban-01", "name": name(), "role": "department_staff", "department": "d-urban"},
        {"id": "d-market-01", "name": name(), "role": "department_staff",
         "department": "d-market"},
        {"id": "op-01", "name": "值班员 Duty operator", "role": "operator"},
    ]
    district = {
        "id": f"town-{seed}", "name": f"生成的街道 Generated town (seed {seed})",
        "timezone": "Asia/Shanghai", "grids": "grids.geojson", "cameras": cams,
        "departments": [
            {"id": "d-urban", "name": "城管中队 Urban management squad",
             "event_types": ["0501", "0503", "0505", "0506", "0507", "0510"]},
            {"id": "d-market", "name": "市场监管所 Market supervision", "event_types": ["0504"]},
        ],
        "people": people,
    }
    (out / "grids.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8")
    path = out / "district.yaml"
    path.write_text(
        f"# Generated by simulators/district_gen.py (seed {seed}); do not edit by hand.\n"
        + yaml.safe_dump(district, allow_unicode=True, sort_keys=False, width=120),
        encoding="utf-8")
    return path


if __name__ == "__main__":
    import sys

    print(generate(sys.argv[1] if len(sys.argv) > 1 else "district-town"))

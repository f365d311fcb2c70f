"""`gridwatch demo`: the whole system on one machine, on embedded defaults.

Starts a private PostgreSQL and Mosquitto under the data folder (kept between runs), migrates the
database, then runs the center and one edge worker replaying real street clips from
``../shared/media`` as live cameras. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from center.db.migrate import ensure_database, migrate
from center.paths import DEFAULTS_DIR, shared_file
from simulators.local_services import Mosquitto, Postgres, ServiceError, free_port

DEMO_EDGE_ID = "edge-demo"
DEMO_WORKER = "w-0111"
DEMO_DETECTOR = {"model": "nanodet-m-416-coco", "score_threshold": 0.2, "threads": 1}

#: The demo's cameras: real clips replayed in a loop, with zones placed by looking at their
#: frames (tests/test_edge_clips.py checks what each raises). Camera ids match
#: center/defaults/district/district.yaml. NanoDet-m scores the small pavement motorbikes only
#: 0.20-0.27 (models/README.md), hence the low score floors.
DEMO_CAMERAS: list[dict[str, Any]] = [
    {
        "id": "cam-vn-01", "name": "Renmin Rd shops (pavement vendor, parked motorbikes)",
        "media": "media/vn_truccat_intersection_pavement_vendor_6s.mp4", "sample_fps": 2,
        "zones": [
            {"id": "pavement-east", "inertia": 2, "dwell_s": 2, "clear_s": 4, "min_score": 0.2,
             "polygon": [[0.80, 0.42], [0.93, 0.38], [1.0, 0.36], [1.0, 1.0], [0.86, 1.0],
                         [0.79, 0.62]],
             "rules": [{"type": "illegal_parking"}]},
            {"id": "shopfront-east", "inertia": 2, "dwell_s": 2, "clear_s": 4, "min_score": 0.25,
             "polygon": [[0.82, 0.52], [1.0, 0.50], [1.0, 0.78], [0.82, 0.78]],
             "rules": [{"type": "doorway_trading", "min_objects": 2}]},
        ],
    },
    {
        "id": "cam-bj-01", "name": "East St crossing (riders: must not alert)",
        "media": "media/cn_beijing_uadetrac_intersection_8s.mp4", "sample_fps": 2,
        "zones": [
            {"id": "crossing", "dwell_s": 2, "clear_s": 4, "min_score": 0.2,
             "polygon": [[0.0, 0.45], [1.0, 0.45], [1.0, 1.0], [0.0, 1.0]],
             "rules": [{"type": "illegal_parking"}]},
        ],
    },
    {
        "id": "cam-vtest", "name": "Campus road (walkers; a van parked in the bay)",
        "media": "media/vtest.avi", "sample_fps": 1,
        "zones": [
            {"id": "bay", "dwell_s": 10, "clear_s": 10, "min_score": 0.25,
             "polygon": [[0.80, 0.10], [1.0, 0.10], [1.0, 0.26], [0.80, 0.26]],
             "rules": [{"type": "illegal_parking", "classes": ["car"]}]},
        ],
    },
]


def edge_config(broker_port: int) -> dict[str, Any]:
    cameras = []
    for cam in DEMO_CAMERAS:
        spec = {k: v for k, v in cam.items() if k != "media"}
        cameras.append({**spec, "source": str(shared_file(cam["media"])), "loop": True})
    return {"edge_id": DEMO_EDGE_ID, "broker": {"host": "127.0.0.1", "port": broker_port},
            "detector": DEMO_DETECTOR, "cameras": cameras}


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"the center exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise ServiceError(f"the center did not become healthy at {url} within {timeout:.0f}s")


def _gridwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "center.cli", *args]


def run_demo(data_dir: Path, preferred_port: int = 8000) -> int:
    data_dir = Path(data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    pg = Postgres(data_dir / "postgres")
    broker = Mosquitto(data_dir / "mosquitto")
    try:
        edge_cfg = edge_config(broker.port)
        print(f"Starting PostgreSQL on 127.0.0.1:{pg.port} and Mosquitto on 127.0.0.1:{broker.port}",
              flush=True)
        pg.start()
        broker.start()
        dsn = pg.dsn("gridwatch")
        ensure_database(dsn)
        for m in migrate(dsn, commit=True):
            print(f"applied migration {m.name}")
        http_port = free_port(preferred_port)
        env = {**os.environ, "GRIDWATCH_DB__DSN": dsn, "GRIDWATCH_MQTT__PORT": str(broker.port),
               "GRIDWATCH_HTTP__PORT": str(http_port),
               "GRIDWATCH_DISTRICT": str(DEFAULTS_DIR / "district" / "district.yaml")}
        config_path = data_dir / "edge-demo.yaml"
        config_path.write_text(yaml.safe_dump(edge_cfg, allow_unicode=True, sort_keys=False))
        with open(logs / "center.log", "ab") as center_log:
            center = subprocess.Popen(_gridwatch("center", "run"), env=env,
                                      stdout=center_log, stderr=subprocess.STDOUT)
        children.append(center)
        base = f"http://127.0.0.1:{http_port}"
        _wait_healthy(f"{base}/healthz", center, 60)
        with open(logs / "edge.log", "ab") as edge_log:
            children.append(subprocess.Popen(
                _gridwatch("edge", "run", "--config", str(config_path)), env=env,
                stdout=edge_log, stderr=subprocess.STDOUT))
        print(f"\ngridwatch demo is running (data in {data_dir}, logs in {logs})\n"
              f"  wall screen : {base}/wall\n"
              f"  worker phone: {base}/phone?worker_id={DEMO_WORKER}\n"
              f"  API docs    : {base}/docs\n"
              f"  edge config : {config_path}\n"
              "Press Ctrl-C to stop.", flush=True)
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        dead = next(c for c in children if c.poll() is not None)
        print(f"a demo process exited (code {dead.returncode}); see {logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
        return 0
    except (ServiceError, FileNotFoundError) as exc:
        print(f"gridwatch demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for c in reversed(children):
            if c.poll() is None:
                c.send_signal(signal.SIGINT)
        for c in reversed(children):
            try:
                c.wait(15)
            except subprocess.TimeoutExpired:
                c.kill()
        broker.stop()
        pg.stop()

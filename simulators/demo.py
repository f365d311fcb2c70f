"""`gridwatch demo`: the whole system on one machine, on embedded defaults.

Starts a private PostgreSQL and Mosquitto under the data folder (kept between runs), migrates the
database, then runs the center and one edge worker replaying real street clips from
``../shared/media`` as live cameras. Ctrl-C stops everything it started.

So that the wall screen is alive within a minute, it also runs (unless ``bots=False``,
``gridwatch demo --no-bots``) a gentle synthetic alert stream (``gridwatch sim alerts``) as edge
``edge-sim`` for its own simulated cameras outside ``DEMO_WORKER``'s micro-grid (the district
gives them to ``edge-sim``; an edge may speak only for its cameras), with snapshots from a real
camera's clip, and worker and leader bots
(``gridwatch sim workers``) for the other micro-grids with human-ish delays, so tickets move
through their states. ``DEMO_WORKER``'s micro-grid is left to the person at the phone page.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from center.services.passwords import ensure_credentials
from center.store.migrate import ensure_database, migrate
from center.transport.mqtt_auth import AuthFiles, gen_auth
from simulators.local_services import Mosquitto, Postgres, ServiceError, free_port
from wire.paths import DEFAULTS_DIR, shared_file

DEMO_EDGE_ID = "edge-demo"
DEMO_WORKER = "w-0111"
DEMO_DETECTOR = {"model": "nanodet-m-416-coco", "score_threshold": 0.2, "threads": 1}
#: The synthetic side of the demo: edge-sim's cameras outside DEMO_WORKER's micro-grid (mg-011),
#: each with the real camera whose clip gives its snapshots, and the bots of the micro-grids
#: they route to (their leaders come along). One message every ~4 s.
SIM_CAMERAS = {"cam-sim-12": "cam-bj-01", "cam-sim-21": "cam-vtest"}
SIM_WORKERS = ("w-0121", "w-0122", "w-0211", "w-0221")
SIM_LEADERS = ("l-012", "l-021", "l-022")
SIM_RATE = 0.25

#: The demo's cameras: real clips replayed in a loop, with zones placed by looking at their
#: frames (tests/test_edge_clips.py checks what each raises). Camera ids match
#: center/defaults/district/district.yaml. NanoDet-m scores the small pavement motorbikes only
#: 0.20-0.27 (models/README.md), hence the low score floors. The two street clips have one key
#: frame per loop (6.4 s, 8.3 s apart): the edge's default ``live.max_keyframe_interval_s``
#: (3 s) transcodes them for live view, so they play within its 3 s target (docs/video.md).
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


def edge_config(broker_port: int, auth: AuthFiles | None = None) -> dict[str, Any]:
    cameras = []
    for cam in DEMO_CAMERAS:
        spec = {k: v for k, v in cam.items() if k != "media"}
        cameras.append({**spec, "source": str(shared_file(cam["media"])), "loop": True})
    broker: dict[str, Any] = {"host": "127.0.0.1", "port": broker_port}
    if auth is not None:
        broker.update(username=DEMO_EDGE_ID,
                      password_file=str(auth.edge_secret(DEMO_EDGE_ID).resolve()))
    return {"edge_id": DEMO_EDGE_ID, "broker": broker, "detector": DEMO_DETECTOR,
            "evidence": {"keep_frame": True}, "cameras": cameras}


#: The edge id of the demo's synthetic alert stream (``gridwatch sim alerts --edge-id``).
SIM_EDGE_ID = "edge-sim"


def demo_auth(data_dir: Path) -> AuthFiles:
    """The demo's MQTT accounts (the center, the real edge, the simulated one) under
    ``data_dir/mqtt-auth``; passwords are made once and kept between runs."""
    return gen_auth([DEMO_EDGE_ID, SIM_EDGE_ID], data_dir / "mqtt-auth")


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
    return [sys.executable, "-m", "gridwatch.cli", *args]


def sim_commands(broker_port: int, base_url: str, passwords: Path) -> dict[str, list[str]]:
    """The demo's synthetic alerts and bots, as ``gridwatch sim`` command lines."""
    media = {c["id"]: shared_file(c["media"]) for c in DEMO_CAMERAS}
    return {
        "sim-alerts": _gridwatch(
            "sim", "alerts", "--broker", f"127.0.0.1:{broker_port}",
            "--district", str(DEFAULTS_DIR / "district"), "--cameras", ",".join(SIM_CAMERAS),
            "--edge-id", "edge-sim", "--zone-prefix", "sim-", "--rate", str(SIM_RATE),
            # A seed of its own each start: the seed makes the alert ids, and a demo started
            # again on its data would re-send the last start's (dead letters, not alerts).
            "--duration", "0", "--seed", str(secrets.randbits(31)),
            *[f"--snapshots={c}={media[real]}" for c, real in SIM_CAMERAS.items()]),
        "sim-workers": _gridwatch(
            "sim", "workers", "--center", base_url, "--workers", ",".join(SIM_WORKERS),
            "--accept-after", "10", "--handle-after", "30", "--verify-after", "15",
            "--fail-verify", "0.15", "--passwords", str(passwords)),
        # The same workers on duty, walking their micro-grids: the wall's worker markers.
        "sim-patrols": _gridwatch(
            "sim", "patrols", "--center", base_url, "--workers", ",".join(SIM_WORKERS),
            "--passwords", str(passwords)),
    }


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """SIGTERM (``docker stop``, systemd, ``timeout``) and SIGHUP (a closed terminal) stop the
    demo the way Ctrl-C does, so its PostgreSQL, broker and processes never outlive it. SIGINT
    too: a shell that starts the demo in the background hands it SIGINT ignored, and the
    children would inherit that and ignore the stop they are sent."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


def run_demo(data_dir: Path, preferred_port: int = 8000, bots: bool = True) -> int:
    _stop_on_signals()
    data_dir = Path(data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    pg = Postgres(data_dir / "postgres")
    # Every client logs in (allow_anonymous false, an ACL per edge: docs/security.md).
    auth = demo_auth(data_dir)
    broker = Mosquitto(data_dir / "mosquitto", password_file=auth.password_file,
                       acl_file=auth.acl_file)
    try:
        edge_cfg = edge_config(broker.port, auth)
        print(f"Starting PostgreSQL on 127.0.0.1:{pg.port} and Mosquitto on"
              f" 127.0.0.1:{broker.port}", flush=True)
        pg.start()
        broker.start()
        dsn = pg.dsn("gridwatch")
        ensure_database(dsn)
        for m in migrate(dsn, commit=True):
            print(f"applied migration {m.name}")
        http_port = free_port(preferred_port)
        env = {**os.environ, "GRIDWATCH_DB__DSN": dsn, "GRIDWATCH_MQTT__PORT": str(broker.port),
               "GRIDWATCH_MQTT__USERNAME": auth.center_user,
               "GRIDWATCH_MQTT__PASSWORD_FILE": str(auth.center_secret.resolve()),
               "GRIDWATCH_HTTP__PORT": str(http_port),
               "GRIDWATCH_DISTRICT": str(DEFAULTS_DIR / "district" / "district.yaml")}
        config_path = data_dir / "edge-demo.yaml"
        config_path.write_text(yaml.safe_dump(edge_cfg, allow_unicode=True, sort_keys=False))
        with open(logs / "center.log", "ab") as center_log:
            center = subprocess.Popen(_gridwatch("center", "run"), env=env,
                                      stdout=center_log, stderr=subprocess.STDOUT)
        children.append(center)
        base = f"http://127.0.0.1:{http_port}"
        _wait_healthy(f"{base}/healthz", center, 60)  # it imports the district on first start
        credentials = data_dir / "credentials.txt"
        made = ensure_credentials(dsn, credentials)
        if made:
            print(f"made passwords for {len(made)} people in {credentials}")
        with open(logs / "edge.log", "ab") as edge_log:
            children.append(subprocess.Popen(
                _gridwatch("edge", "run", "--config", str(config_path)), env=env,
                stdout=edge_log, stderr=subprocess.STDOUT))
        if bots:
            for name, sim_cmd in sim_commands(broker.port, base, credentials).items():
                cmd = sim_cmd
                if name == "sim-alerts":
                    cmd = [*sim_cmd, "--username", SIM_EDGE_ID,
                           "--password-file", str(auth.edge_secret(SIM_EDGE_ID).resolve())]
                with open(logs / f"{name}.log", "ab") as sim_log:
                    children.append(subprocess.Popen(cmd, env=env, stdout=sim_log,
                                                      stderr=subprocess.STDOUT))
        sim_line = (f"  simulated   : alerts on {', '.join(SIM_CAMERAS)}; bots for "
                    f"{', '.join(SIM_WORKERS)} (--no-bots: without)\n" if bots else "")
        print(f"\ngridwatch demo is running (data in {data_dir}, logs in {logs})\n"
              f"  wall screen : {base}/wall\n"
              f"  worker phone: {base}/phone  (log in as {DEMO_WORKER})\n"
              f"  leader view : {base}/leader (op-01)   engineer view: {base}/engineer (eng-01)\n"
              f"  passwords   : {credentials} (wall screen: op-01)\n"
              f"  API docs    : {base}/docs\n"
              f"  edge config : {config_path}\n"
              f"{sim_line}"
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

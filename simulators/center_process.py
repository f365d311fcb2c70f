"""The real center as a subprocess (``gridwatch center run``), for the drills that must SIGKILL it
and start it again (``gridwatch sim drill``, ``bench/drills.py``): starting it, waiting until it
is healthy and stopping it live here once, so every drill treats the center the same way.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulators.local_services import ServiceError, stop_process

CENTER_RUN = (sys.executable, "-m", "gridwatch.cli", "center", "run")


def center_health(url: str, timeout: float = 2.0) -> dict[str, Any]:
    """The center's ``/healthz`` at ``url`` (``http://host:port``); OSError while it is down."""
    with urllib.request.urlopen(url + "/healthz", timeout=timeout) as r:
        return json.loads(r.read())


def start_center(env: Mapping[str, str], url: str, log: Path, timeout: float = 60
                 ) -> subprocess.Popen[bytes]:
    """Start the center with ``env`` (its settings), its output appended to ``log``, and return
    it once its health at ``url`` says MQTT is connected. ServiceError when it exits first or is
    not healthy within ``timeout`` seconds; then nothing of it is left running."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(CENTER_RUN, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"the center exited with code {proc.returncode}; see {log}")
        try:
            if center_health(url).get("mqtt"):
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_center(proc)
    raise ServiceError(f"the center was not healthy within {timeout:.0f}s; see {log}")


def stop_center(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop it as Ctrl-C does (SIGINT: a clean shutdown), SIGKILL after 15 s; nothing to do when
    it never started or has already exited."""
    if proc is not None and proc.poll() is None:
        stop_process(proc, signal.SIGINT, 15)

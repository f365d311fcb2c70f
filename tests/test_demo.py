"""The main job, as its user runs it: ``gridwatch demo`` starts everything, serves the wall, and
stops everything it started, whether stopped by Ctrl-C or by SIGTERM (a service manager,
``timeout``, ``docker stop``), also when a shell started it in the background."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from simulators.local_services import free_port
from tests import plain_http
from tests.waiting import wait_until
from wire.paths import REPO


def _pids_using(path: Path) -> dict[int, str]:
    """The live processes whose command line names ``path`` (the demo's PostgreSQL, broker,
    center and edge all do), with that command line."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found[int(proc.name)] = cmdline
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_demo_serves_the_wall_and_leaves_nothing_running(tmp_path: Path,
                                                         stop: signal.Signals) -> None:
    data = tmp_path / "demo"
    lines: list[str] = []
    # SIGINT ignored, as a shell's `gridwatch demo &` hands it over.
    command = [sys.executable, "-m", "gridwatch", "demo", "--no-bots", "--port",
               str(free_port()), "--data-dir", str(data)]
    demo = subprocess.Popen(["bash", "-c", 'trap "" INT; exec "$@"', "demo", *command],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("is running" in line for line in lines) or demo.poll() is not None,
                   240, "the demo to start")
        assert demo.poll() is None, "".join(lines)
        wall = next(line.split()[-1] for line in lines if "wall screen" in line)
        assert plain_http.get(wall, timeout=10).status_code == 200
        assert _pids_using(data), "the demo's services should name its data folder"
        demo.send_signal(stop)
        assert demo.wait(90) == 0, "".join(lines)
        wait_until(lambda: not _pids_using(data), 30, "every demo process to exit")
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in _pids_using(data):  # what a failed stop left behind, so later tests run
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

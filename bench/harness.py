"""What the service benchmarks (``bench_ingest``, ``bench_ws``, ``bench_live``) share, so each
keeps only what it measures: the private PostgreSQL and Mosquitto a run starts and always tears
down, its results file, and the helper subprocesses (publishers, websocket clients, a center) it
runs as ``python -m bench.bench_NAME COMMAND ...``, because one process cannot load the system
alone; the center's helper is ``serve_center`` with ``serve_options``.

Not named ``bench_*``: ``python -m bench`` runs every such module as a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from simulators.local_services import Mosquitto, Postgres

ROOT = Path(__file__).resolve().parent.parent

#: A helper command's entry point: plain, or a coroutine function (run with ``asyncio.run``).
Command = Callable[[argparse.Namespace], Any]
#: Adds a helper command's options to its subparser.
Options = Callable[[argparse.ArgumentParser], None]


@contextmanager
def services(tmp: Path, template: str) -> Iterator[tuple[str, Mosquitto]]:
    """PostgreSQL and Mosquitto under ``tmp``, with the migrated database ``template`` that each
    measurement copies (a fresh database is a ``CREATE DATABASE ... TEMPLATE``, not a migration).
    Yields (the admin DSN, the broker); both servers are stopped on the way out, PostgreSQL
    ``immediate``: its data is thrown away."""
    import psycopg  # here, not above: the helper processes import this module too

    from center.store.migrate import migrate

    pg = Postgres(tmp / "pg").start()
    broker = Mosquitto(tmp / "mqtt").start()
    try:
        admin = pg.dsn("postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {template}")
        migrate(psycopg.conninfo.make_conninfo(admin, dbname=template), commit=True)
        yield admin, broker
    finally:
        broker.stop()
        pg.stop("immediate")


def generated_district(prefix: str) -> tuple[Path, Path, Any, Path]:
    """A fresh temp folder with a generated town (simulators/district_gen): (the folder, the
    district file, the loaded district, ``cameras.json``, the cameras and their edges that the
    publisher processes read)."""
    import tempfile

    from center.domain.district import load_district
    from simulators.district_gen import generate

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    district = generate(tmp / "district")
    d = load_district(district)
    cameras = tmp / "cameras.json"
    cameras.write_text(json.dumps([{"id": c.id, "edge_id": c.edge_id}
                                   for c in d.cameras.values()]))
    return tmp, district, d, cameras


def write_results(tmp: Path, results: list[dict[str, Any]]) -> None:
    """Every figure of the run, unrounded, in ``tmp/results.json``; prints where it is."""
    path = tmp / "results.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {path}")


def wait_for(pred: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``pred`` every ``every`` seconds until it returns something true, and return that;
    TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def spawn(module: str, *args: str, stdout: int | IO[Any] | None = None
          ) -> subprocess.Popen[str]:
    """``python -m module *args`` from the repository root: a benchmark's helper process."""
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=stdout,
                            text=True)


def helper_cli(commands: dict[str, tuple[Command, Options]]) -> None:
    """The command line of a benchmark's helper processes: one subcommand per entry of
    ``commands`` (name -> (entry point, its options)), run on the parsed arguments."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, (_, options) in commands.items():
        options(sub.add_parser(name))
    args = parser.parse_args()
    result = commands[args.cmd][0](args)
    if inspect.iscoroutine(result):
        asyncio.run(result)


def serve_options(p: argparse.ArgumentParser) -> None:
    """The options of a benchmark's ``serve`` helper: its database, broker, port and secret."""
    p.add_argument("--dsn", required=True)
    p.add_argument("--mqtt-port", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True)


def serve_center(args: argparse.Namespace, client_id: str, **uvicorn_options: Any) -> None:
    """The real center (``create_app`` under uvicorn) on 127.0.0.1:``args.port`` until the
    process is stopped: a benchmark's ``serve`` helper (``serve_options``). Its MQTT client id
    is ``client_id`` and a random suffix (a restarted run never takes over an old session);
    ``uvicorn_options`` choose the server's variant (``bench_ws``: the websocket
    implementation, permessage-deflate)."""
    import logging

    import uvicorn

    from center.app import create_app
    from center.platform.settings import (
        CenterSettings,
        DatabaseSettings,
        HttpSettings,
        MqttSettings,
    )

    logging.basicConfig(level=logging.WARNING)
    settings = CenterSettings(
        db=DatabaseSettings(dsn=args.dsn, pool_min=2, pool_max=8),
        mqtt=MqttSettings(port=args.mqtt_port, client_id=f"{client_id}-{uuid.uuid4().hex[:8]}"),
        http=HttpSettings(port=args.port), secret_key=args.secret)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=args.port, log_level="warning",
                log_config=None, **uvicorn_options)

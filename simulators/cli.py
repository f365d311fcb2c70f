"""``gridwatch sim ...``: cameras, districts, alert storms, worker bots, recordings and drills.

Exit codes follow the project's rule: 0 ok, 1 failure (a drill that found a problem, a storm
the broker did not fully acknowledge), 2 bad usage (click's own).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import click

from wire.paths import DATA_DIR, DEFAULTS_DIR

DEMO_DISTRICT = DEFAULTS_DIR / "district"


def _broker(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT") from None


def _mqtt_login(fn):
    """``--username`` / ``--password-file``: log in to a broker that has accounts (the file
    holds the password, e.g. one written by ``gridwatch center mqtt-accounts``)."""
    fn = click.option("--password-file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
                      help="File holding the MQTT password (never on the command line).")(fn)
    return click.option("--username", help="MQTT user name (an edge account).")(fn)


def _read_password(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path else None


@click.group("sim")
def sim_group() -> None:
    """Simulators: replayed cameras, generated districts, alert storms, worker bots, drills."""
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


@sim_group.command("replay")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cameras", "n", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many live cameras (file i mod len(FILES) each).")
@click.option("--offset-s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Camera i starts i × this many seconds into its file (mjpeg).")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="1 = the file's own pace; 4 = four times faster (mjpeg).")
@click.option("--loop/--no-loop", default=True, show_default=True,
              help="Play the files forever, or go off the air after one pass.")
@click.option("--protocol", type=click.Choice(["mjpeg", "rtsp"]), default="mjpeg",
              show_default=True)
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free one).")
@click.option("--edge-config", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an edge YAML for these cameras here.")
@click.option("--broker", default="127.0.0.1:1883", show_default=True,
              help="Broker for the edge YAML.")
@click.option("--zones-from-demo/--no-demo-zones", default=True, show_default=True,
              help="In the edge YAML, give replays of the demo's clips the demo's zones.")
@click.option("--duration", type=click.FloatRange(min=0), default=0.0,
              help="Stop after this many seconds (default: Ctrl-C, or the end with --no-loop).")
def replay_cmd(files: tuple[Path, ...], n: int, offset_s: float, speed: float, loop: bool,
               protocol: str, port: int, edge_config: Path | None, broker: str,
               zones_from_demo: bool, duration: float) -> None:
    """Serve recorded video FILES as live cameras and print their URLs."""
    import yaml

    from simulators.replay import CameraReplay, print_progress_until
    from simulators.replay import edge_config as make_edge_config

    try:
        replay = CameraReplay(list(files), n, offset_s=offset_s, speed=speed, loop=loop,
                              protocol=protocol, port=port).start()
    except (ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        for cam in replay.cameras:
            click.echo(f"{cam.id}  {cam.url}  ({cam.file.name}, from {cam.offset_s:g}s)")
        if edge_config:
            host, bport = _broker(broker)
            doc = make_edge_config(replay, host, bport, zones_from_demo=zones_from_demo)
            edge_config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
                                   encoding="utf-8")
            click.echo(f"edge config: {edge_config} (gridwatch edge run --config {edge_config})")
        click.echo("Ctrl-C to stop.", err=True)
        print_progress_until(replay, duration)
    except KeyboardInterrupt:
        pass
    finally:
        replay.stop()


@sim_group.command("district")
@click.option("--communities", type=click.IntRange(min=1), default=45, show_default=True)
@click.option("--micro-grids", type=click.IntRange(min=1), default=172, show_default=True)
@click.option("--cameras", type=click.IntRange(min=1), default=1150, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for district.yaml + grids.geojson.")
def district_cmd(communities: int, micro_grids: int, cameras: int, seed: int, out: Path) -> None:
    """Generate a district (same seed, same bytes) and check it as the center would."""
    from center.domain.district import DistrictError, load_district
    from simulators.district_gen import generate

    try:
        path = generate(out, communities=communities, micro_grids=micro_grids,
                        cameras=cameras, seed=seed)
        d = load_district(path)
    except (ValueError, DistrictError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}: {len(d.areas)} areas, {len(d.cameras)} cameras, {len(d.people)} people"
               f"\nimport it: gridwatch center import-district {path} --commit"
               f"  (or GRIDWATCH_DISTRICT={path} on a fresh database)")


@sim_group.command("alerts")
@click.option("--broker", default="127.0.0.1:1883", show_default=True, help="HOST:PORT")
@click.option("--district", type=click.Path(exists=True, path_type=Path), default=DEMO_DISTRICT,
              show_default=True, help="District folder (or its district.yaml): the cameras.")
@click.option("--cameras", "only", help="Only these camera ids (comma list).")
@click.option("--edge-id", help="Publish as this edge (default: each camera's edge_id).")
@click.option("--zone-prefix", default="", help="Prefix for the zone ids (e.g. sim-).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True, help="Messages per second.")
@click.option("--duration", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds (0: until Ctrl-C).")
@click.option("--burst", default="none", show_default=True,
              help="START-END:xFACTOR,...: e.g. 10-15:x5 sends 5 × the rate from 10 s to 15 s.")
@click.option("--malformed", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Share of malformed messages (dead letters).")
@click.option("--duplicates", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Share of byte-identical repeats (QoS 1 redelivery).")
@click.option("--max-inflight", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--snapshots", "snapshot_files", multiple=True,
              help="Clip or picture whose frames become the snapshots; CAMERA=FILE for one "
                   "camera's own (repeatable).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write what was sent (counts, every (alert_id, seq), malformed SHA-256) "
                   "as JSON here.")
@_mqtt_login
def alerts_cmd(broker: str, district: Path, only: str | None, edge_id: str | None,
               zone_prefix: str, rate: float, duration: float, burst: str, malformed: float,
               duplicates: float, max_inflight: int, snapshot_files: tuple[str, ...],
               seed: int, report: Path | None, username: str | None,
               password_file: Path | None) -> None:
    """Publish protocol-valid alert streams from the district's cameras (plus chosen shares of
    malformed and duplicate messages) and say exactly what the broker acknowledged."""
    from simulators.alerts import AlertStorm, district_cameras, parse_burst, snapshot_pool

    host, port = _broker(broker)
    shared_files = [Path(f) for f in snapshot_files if "=" not in f]
    per_camera = dict(f.split("=", 1) for f in snapshot_files if "=" in f)
    try:
        bursts = parse_burst(burst)
        cams = district_cameras(district, only.split(",") if only else None, edge_id)
        storm = AlertStorm(cams, host, port, seed=seed, malformed=malformed,
                           duplicates=duplicates, max_inflight=max_inflight,
                           snapshots=snapshot_pool(shared_files) if shared_files else None,
                           camera_snapshots={c: snapshot_pool([Path(f)])
                                             for c, f in per_camera.items()},
                           zone_prefix=zone_prefix, username=username,
                           password=_read_password(password_file))
        storm.connect()
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(cams)} cameras -> {host}:{port}, {rate:g} msg/s"
               f"{' for ' + format(duration, 'g') + ' s' if duration else ''}", err=True)
    # Ctrl-C (and the demo's stop, which may come twice) ends the storm gracefully: the
    # messages in flight are still waited for and counted.
    before = {s: signal.signal(s, lambda *_: storm.stop())
              for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = storm.run(rate, duration, bursts, progress=sys.stderr.isatty(),
                           ack_timeout=10 if not duration else 60)
    finally:
        storm.close()
        for s, handler in before.items():
            signal.signal(s, handler)
    click.echo(json.dumps(result.summary(), indent=1))
    if report:
        report.write_text(result.to_json(), encoding="utf-8")
    if result.unacked:
        sys.exit(1)


@sim_group.command("workers")
@click.option("--center", "url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--workers", default="all", show_default=True,
              help="Worker ids (comma list) or all; their micro-grid leaders come along.")
@click.option("--accept-after", type=click.FloatRange(min=0), default=5.0, show_default=True)
@click.option("--handle-after", type=click.FloatRange(min=0), default=20.0, show_default=True)
@click.option("--late", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of tickets accepted only after --late-after seconds.")
@click.option("--late-after", type=click.FloatRange(min=0), default=120.0, show_default=True)
@click.option("--fail-verify", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of handled tickets the leader bot sends back (rework).")
@click.option("--verify-after", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="Leader bots check handled tickets after this long (0: no leader bots).")
@click.option("--return-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of tickets the worker returns as mis-dispatched.")
@click.option("--duration", type=click.FloatRange(min=0), default=0.0,
              help="Seconds (0: until Ctrl-C).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--passwords", "passwords_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The bots' logins: a `gridwatch center gen-passwords` file "
                   "(person_id<TAB>role<TAB>password); leaders without one stay out.")
def workers_cmd(url: str, workers: str, accept_after: float, handle_after: float, late: float,
                late_after: float, fail_verify: float, verify_after: float,
                return_share: float, duration: float, seed: int,
                passwords_file: Path) -> None:
    """Worker bots that use the phone page's websocket and REST actions to accept, arrive,
    resolve (with a photo) or return their tickets; leader bots verify or send back."""
    import httpx

    from simulators.workers import Bots, BotSettings, LoginFailed, PasswordBook, read_passwords

    settings = BotSettings(accept_after=accept_after, handle_after=handle_after, late=late,
                           late_after=late_after, fail_verify=fail_verify,
                           verify_after=verify_after, return_share=return_share, seed=seed)

    async def main() -> dict[str, object]:
        bots = await Bots.discover(url, workers, settings=settings,
                                   passwords=PasswordBook(read_passwords(passwords_file)))
        click.echo(f"{len(bots.workers)} worker bots, {len(bots.leaders)} leader bots on {url}",
                   err=True)
        return (await bots.run(duration)).as_dict()

    try:
        result = asyncio.run(main())
    except (httpx.HTTPError, ValueError, LoginFailed) as exc:
        raise click.ClickException(f"{url}: {exc}") from None
    except KeyboardInterrupt:
        return
    click.echo(json.dumps(result, indent=1))


@sim_group.command("patrols")
@click.option("--center", "url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--workers", required=True, help="Worker ids (comma list).")
@click.option("--every", "every_s", type=click.FloatRange(min=0.5), default=5.0,
              show_default=True, help="Seconds between positions.")
@click.option("--radius", "radius_m", type=click.FloatRange(min=10), default=250.0,
              show_default=True, help="Metres from the micro-grid's middle they stay within.")
@click.option("--duration", type=click.FloatRange(min=0), default=0.0,
              help="Seconds (0: until Ctrl-C).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--passwords", "passwords_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The bots' logins: a `gridwatch center gen-passwords` file.")
def patrols_cmd(url: str, workers: str, every_s: float, radius_m: float, duration: float,
                seed: int, passwords_file: Path) -> None:
    """Workers on duty whose phones share a walk around their micro-grid (docs/presence.md);
    they check out when stopped."""
    import httpx

    from simulators.patrols import run_patrols
    from simulators.workers import PasswordBook, read_passwords

    ids = [w.strip() for w in workers.split(",") if w.strip()]
    try:
        sent = asyncio.run(run_patrols(url, ids, PasswordBook(read_passwords(passwords_file)),
                                       every_s=every_s, radius_m=radius_m, duration=duration,
                                       seed=seed))
    except (httpx.HTTPError, ValueError) as exc:
        raise click.ClickException(f"{url}: {exc}") from None
    except KeyboardInterrupt:
        return
    click.echo(json.dumps(sent, indent=1))


@sim_group.command("replay-alerts")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--broker", default="127.0.0.1:1883", show_default=True, help="HOST:PORT")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Scale the recorded gaps (2 = twice as fast; 0 = no waiting).")
@click.option("--fresh-ids/--original-ids", default=False, show_default=True,
              help="New alert ids and times moved to now (new tickets), or the recorded ones "
                   "(the center stores nothing twice).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write what was sent as JSON here.")
@_mqtt_login
def replay_alerts_cmd(folder: Path, broker: str, speed: float, fresh_ids: bool,
                      report: Path | None, username: str | None,
                      password_file: Path | None) -> None:
    """Republish the alerts an edge recorded (gridwatch edge run --record FOLDER)."""
    from simulators.replay_alerts import replay_recording

    host, port = _broker(broker)
    try:
        result = replay_recording(folder, host, port, speed=speed, fresh_ids=fresh_ids,
                                  progress=sys.stderr.isatty(), username=username,
                                  password=_read_password(password_file))
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result.summary(), indent=1))
    if report:
        report.write_text(result.to_json(), encoding="utf-8")
    if result.unacked:
        sys.exit(1)


@sim_group.command("drill")
@click.option("--scenario", default="all", show_default=True,
              help="storm, broker-restart, center-restart, late-workers (reconciled), "
                   "broker-outage, edge-restart, api-fuzz (reliability figures), or all "
                   "(comma list allowed).")
@click.option("--small", is_flag=True, help="A small district and short storms (tests, CI).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the drill's PostgreSQL, broker and logs here (default: a temp folder, "
                   "removed afterwards).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full results as JSON here.")
def drill_cmd(scenario: str, small: bool, data_dir: Path | None, seed: int,
              report: Path | None) -> None:
    """Fault drills on a private PostgreSQL + Mosquitto + center: storm, broker restart,
    center SIGKILL, late workers, then reconcile and check every ticket; broker outage, edge
    restart and API fuzz with their figures (docs/reliability.md). Exit 1 on any finding
    (lost alerts included)."""
    from simulators.drill import SCENARIOS, run_drill

    names = list(SCENARIOS) if scenario == "all" else [s.strip() for s in scenario.split(",")]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        raise click.BadParameter(f"unknown scenario {', '.join(unknown)}; "
                                 f"choose from {', '.join(SCENARIOS)} or all",
                                 param_hint="--scenario")
    ok = run_drill(names, small=small, data_dir=data_dir, seed=seed, report=report)
    sys.exit(0 if ok else 1)


@click.command("demo")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Preferred HTTP port (a free one is used if it is taken).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the demo keeps its database and broker (default .gridwatch/).")
@click.option("--no-bots", is_flag=True,
              help="Only the real edge: no synthetic alerts and no worker bots.")
def demo_command(port: int, data_dir: Path | None, no_bots: bool) -> None:
    """Run everything on embedded defaults: PostgreSQL, Mosquitto, center and an edge."""
    from simulators.demo import run_demo

    sys.exit(run_demo(data_dir or DATA_DIR, preferred_port=port, bots=not no_bots))

"""The one ``gridwatch`` command. Exit codes: 0 ok, 1 failure, 2 bad usage (click's)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """gridwatch: camera alerts to closed-loop tickets for city grid governance."""
    _setup_logging(verbose)


@cli.group()
def center() -> None:
    """The command center: ingest, tickets, API, wall screen and phone pages."""


@center.command("run")
def center_run() -> None:
    """Serve the center (settings from GRIDWATCH_* environment variables or .env)."""
    import uvicorn

    from center.app import create_app, server_options
    from center.district import DistrictError
    from center.settings import CenterSettings

    settings = CenterSettings()
    try:
        app = create_app(settings)
    except (DistrictError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(app, log_config=None, **server_options(settings.http))


@center.command("migrate")
@click.option("--commit", is_flag=True, help="Apply the pending migrations (default: only list).")
def center_migrate(commit: bool) -> None:
    """List pending schema migrations; apply them with --commit."""
    import psycopg

    from center.db.migrate import ensure_database, migrate
    from center.settings import CenterSettings

    dsn = CenterSettings().db.dsn
    try:
        if commit and ensure_database(dsn):
            click.echo("created database")
        todo = migrate(dsn, commit=commit)
    except psycopg.Error as exc:
        raise click.ClickException(f"database {dsn}: {exc}") from None
    verb = "applied" if commit else "pending"
    for m in todo:
        click.echo(f"{verb}: {m.name}")
    if not todo:
        click.echo("schema is up to date")
    elif not commit:
        click.echo("(dry run: nothing changed; add --commit to apply)")


@center.command("check-district")
@click.argument("path", type=click.Path(path_type=Path))
def check_district(path: Path) -> None:
    """Validate a district file (YAML + GeoJSON)."""
    from center.district import DistrictError, load_district

    try:
        d = load_district(path)
    except DistrictError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"OK: {d.name}: {len(d.areas)} areas, {len(d.cameras)} cameras, "
               f"{len(d.people)} people")


@center.command("import-district")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--commit", is_flag=True, help="Write it (default: validate and compare only).")
def import_district_cmd(path: Path, commit: bool) -> None:
    """Import a district file into the database, updating in place (history kept)."""
    import asyncio

    import psycopg

    from center import district_store
    from center.clock import SystemClock
    from center.district import DistrictError, load_district
    from center.settings import CenterSettings

    try:
        new = load_district(path)
    except DistrictError as exc:
        raise click.ClickException(str(exc)) from None

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(CenterSettings().db.dsn) as conn:
            old = await district_store.load_district(conn)
            for kind in ("areas", "cameras", "people", "departments"):
                before = {k for k, v in (getattr(old, kind) if old else {}).items() if v.active}
                after = set(getattr(new, kind))
                click.echo(f"{kind}: {len(after - before)} new, {len(before - after)} removed, "
                           f"{len(after & before)} kept")
            if commit:
                async with conn.transaction():
                    await district_store.import_district(conn, new, actor_id="cli",
                                                         at=SystemClock().now())
                click.echo("imported (restart the center to route with it)")
            else:
                click.echo("(dry run: nothing changed; add --commit to import)")

    try:
        asyncio.run(run())
    except psycopg.Error as exc:
        raise click.ClickException(f"database: {exc}") from None


@center.command("set-password")
@click.argument("person_id")
def set_password_cmd(person_id: str) -> None:
    """Set PERSON_ID's login password: read from standard input when it is not a terminal
    (one line), else prompted twice. Never an argument (``ps`` shows those)."""
    from center.passwords import PasswordError, set_password
    from center.settings import CenterSettings

    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        set_password(CenterSettings().db.dsn, person_id, password)
    except PasswordError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password set for {person_id}; the tokens they had are revoked")


@center.command("gen-passwords")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File for the new passwords (created with mode 0600).")
@click.option("--only-missing", is_flag=True, help="Only people who have no password yet.")
def gen_passwords_cmd(out: Path, only_missing: bool) -> None:
    """Random passwords for the district's people; printed to OUT only (never to the screen)."""
    from center.passwords import generate
    from center.settings import CenterSettings

    done = generate(CenterSettings().db.dsn, out, only_missing=only_missing)
    click.echo(f"{len(done)} password(s) written to {out} (mode 0600)")


@cli.group()
def mqtt() -> None:
    """MQTT broker security: accounts, ACL and TLS for Mosquitto (docs/security.md)."""


@mqtt.command("gen-auth")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for passwd, acl, center.secret and edges/*.")
@click.option("--edges", default="", help="Comma-separated edge ids.")
@click.option("--district", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also every edge_id its cameras name.")
@click.option("--edge-config", "edge_configs", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also the edge_id of this edge YAML (repeatable).")
@click.option("--center-user", default="gridwatch-center", show_default=True)
@click.option("--broker", default="127.0.0.1:1883", show_default=True,
              help="HOST:PORT written into the edge snippets and center.env.")
@click.option("--rotate", is_flag=True, help="New passwords for every account.")
def mqtt_gen_auth(out_dir: Path, edges: str, district: Path | None,
                  edge_configs: tuple[Path, ...], center_user: str, broker: str,
                  rotate: bool) -> None:
    """Write Mosquitto's password file and ACL, and each account's credentials (0600).

    Existing passwords are kept unless --rotate; passwords are never printed."""
    from center.mqtt_auth import AuthError, gen_auth

    ids = [e for e in edges.split(",") if e.strip()]
    if district is not None:
        from center.district import DistrictError, load_district

        try:
            d = load_district(district)
        except DistrictError as exc:
            raise click.ClickException(str(exc)) from None
        ids += [c.edge_id for c in d.cameras.values() if c.edge_id]
    if edge_configs:
        from edge.config import ConfigError, load_config

        for path in edge_configs:
            try:
                ids.append(load_config(path).edge_id)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
    host, _, port = broker.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"{broker!r}: expected HOST:PORT", param_hint="--broker")
    try:
        files = gen_auth(ids, out_dir, center_user=center_user, rotate=rotate,
                         broker_host=host or "127.0.0.1", broker_port=int(port))
    except AuthError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {files.password_file} and {files.acl_file} "
               f"({len(files.edges)} edges + {center_user}); add {out_dir}/mosquitto-auth.conf "
               "to mosquitto.conf")
    click.echo(f"center: {out_dir}/center.env; edges: {out_dir}/edges/<edge_id>.broker.yaml "
               "(+ .secret, copy it to the edge, mode 0600)")


@cli.command()
@click.option("--port", type=int, default=8000, show_default=True,
              help="Preferred HTTP port (a free one is used if it is taken).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the demo keeps its database and broker (default .gridwatch/).")
@click.option("--no-bots", is_flag=True,
              help="Only the real edge: no synthetic alerts and no worker bots.")
def demo(port: int, data_dir: Path | None, no_bots: bool) -> None:
    """Run everything on embedded defaults: PostgreSQL, Mosquitto, center and an edge."""
    from center.paths import DATA_DIR
    from simulators.demo import run_demo

    sys.exit(run_demo(data_dir or DATA_DIR, preferred_port=port, bots=not no_bots))


@cli.group()
def dataset() -> None:
    """Training data from the kept full frames and operators' verdicts (docs/models.md)."""


@dataset.command("export")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--unjudged", is_flag=True,
              help="Also frames without a verdict (pre-labels only, to review in CVAT).")
@click.option("--since", type=click.DateTime(), default=None,
              help="Only frames stored since then (UTC).")
@click.option("--val-share", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
              help="Share of alerts (by a stable hash) put in the validation split.")
def dataset_export_cmd(out: Path, unjudged: bool, since: datetime | None,
                       val_share: float) -> None:
    """Write a YOLO dataset (OUT/data.yaml) and COCO JSON (OUT/annotations.json) from the
    kept full frames: confirmed alerts, false alarms and the detector's pre-labels."""
    import psycopg

    from center.dataset_export import NothingToExport, export, load_frames
    from center.settings import CenterSettings

    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty (an export never mixes with another)")
    try:
        frames = load_frames(CenterSettings().db.dsn, unjudged=unjudged,
                             since=since.replace(tzinfo=UTC) if since else None)
    except psycopg.Error as exc:
        raise click.ClickException(f"database: {exc}") from None
    try:
        done = export(frames, out, val_share=val_share)
    except NothingToExport as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{sum(done.images.values())} images ("
               + ", ".join(f"{n} {k}" for k, n in sorted(done.images.items()))
               + f"), {done.boxes} boxes; left out: "
               + (", ".join(f"{n} {k}" for k, n in sorted(done.skipped.items())) or "none"))
    click.echo(f"YOLO: {done.data_yaml}\nCOCO: {done.coco_json}")


@cli.group()
def model() -> None:
    """Rolling out a candidate detector model (models/README.md, "The model loop")."""


@model.command("canary-check")
@click.option("--camera", "cameras", multiple=True, required=True,
              help="A canary camera running the candidate (repeatable).")
@click.option("--since", type=click.DateTime(), required=True,
              help="When the candidate went live on them (UTC).")
@click.option("--min-days", type=click.FloatRange(min=0), default=7.0, show_default=True,
              help="Decide only after this long on the canary.")
def canary_check_cmd(cameras: tuple[str, ...], since: datetime, min_days: float) -> None:
    """Exit 0 (promote) when the canary cameras' false alarms per camera-day since --since are
    no worse than theirs over as long a time before it, else 1 (hold)."""
    import asyncio

    import psycopg

    from center.canary import decide
    from center.settings import CenterSettings

    async def run() -> bool:
        async with await psycopg.AsyncConnection.connect(CenterSettings().db.dsn) as conn:
            d = await decide(conn, cameras, since.replace(tzinfo=UTC), datetime.now(UTC),
                             min_days=min_days)
        for name, w in (("before", d.before), ("after", d.after)):
            click.echo(f"{name}: {w.start:%Y-%m-%d %H:%M} - {w.end:%Y-%m-%d %H:%M} UTC, "
                       f"{w.confirmed} confirmed, {w.false_alarms} false alarms, "
                       f"{w.false_alarms_per_camera_day:.2f} per camera-day")
        click.echo(d.why)
        return d.promote

    try:
        promote = asyncio.run(run())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except psycopg.Error as exc:
        raise click.ClickException(f"database: {exc}") from None
    sys.exit(0 if promote else 1)


def _attach_edge() -> None:
    from edge.cli import edge_group, eval_command
    from simulators.cli import sim_group

    cli.add_command(edge_group, "edge")
    cli.add_command(eval_command, "eval")
    cli.add_command(sim_group, "sim")


_attach_edge()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

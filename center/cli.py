"""The center's commands: ``gridwatch center``, ``mqtt``, ``dataset`` and ``model`` (the roof,
``gridwatch/cli.py``, puts them under the one ``gridwatch`` command)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from center.services.canary import Decision

_T = TypeVar("_T")


@click.group()
def center() -> None:
    """The command center: ingest, tickets, API, wall screen and phone pages."""


@center.command("run")
def center_run() -> None:
    """Serve the center (settings from GRIDWATCH_* environment variables or .env)."""
    from center.app import create_app, serve
    from center.domain.district import DistrictError
    from center.platform.settings import CenterSettings

    settings = CenterSettings()
    try:
        app = create_app(settings)
    except (DistrictError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    serve(app, settings)  # drains on SIGTERM (docs/deployment.md, "Removing a replica")


@center.command("migrate")
@click.option("--commit", is_flag=True, help="Apply the pending migrations (default: only list).")
def center_migrate(commit: bool) -> None:
    """List pending schema migrations; apply them with --commit."""
    from center.platform.settings import CenterSettings
    from center.store.db import DatabaseError
    from center.store.migrate import ensure_database, migrate

    dsn = CenterSettings().db.dsn
    try:
        if commit and ensure_database(dsn):
            click.echo("created database")
        todo = migrate(dsn, commit=commit)
    except DatabaseError as exc:
        raise click.ClickException(f"database {dsn}: {exc}") from None
    verb = "applied" if commit else "pending"
    for m in todo:
        click.echo(f"{verb}: {m.name}")
    if not todo:
        click.echo("schema is up to date")
    elif not commit:
        click.echo("(dry run: nothing changed; add --commit to apply)")


_PG_BIN = click.option("--pg-bin", type=click.Path(file_okay=False, path_type=Path),
                       envvar="GRIDWATCH_PG_BIN",
                       help="Folder of pg_dump/pg_restore (default: PATH, then the newest "
                            "/usr/lib/postgresql/<N>/bin).")


@center.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_PG_BIN
def center_backup(path: Path, pg_bin: Path | None) -> None:
    """Write a pg_dump archive of the center's database to PATH (mode 0600), while it runs.
    Clips and secret files are not in it: docs/deployment.md "Backups"."""
    from center.platform.settings import CenterSettings
    from center.store.backup import BackupError, backup

    try:
        done = backup(CenterSettings().db.dsn, path, bin_dir=pg_bin)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {done.path}: {done.size_bytes} bytes, {done.tables} tables, "
               f"{done.seconds:.1f} s")


@center.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dsn", required=True,
              help="The database to restore into: created when missing, refused when not empty.")
@_PG_BIN
def center_restore(path: Path, dsn: str, pg_bin: Path | None) -> None:
    """Restore a `gridwatch center backup` archive into a new or empty database (one
    transaction: all or nothing). Point GRIDWATCH_DB__DSN at it and start the center."""
    from center.store.backup import BackupError, restore

    try:
        done = restore(path, dsn, bin_dir=pg_bin)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {path} into {'new' if done.created else 'empty'} database "
               f"{done.database} in {done.seconds:.1f} s (schema version {done.schema_version})")
    if done.pending:
        click.echo(f"{done.pending} migration(s) newer than the backup: run "
                   "`gridwatch center migrate --commit` with GRIDWATCH_DB__DSN on it")


@center.command("check-district")
@click.argument("path", type=click.Path(path_type=Path))
def check_district(path: Path) -> None:
    """Validate a district file (YAML + GeoJSON)."""
    from center.domain.district import DistrictError, load_district

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

    from center.domain.district import DistrictError, load_district
    from center.platform.clock import SystemClock
    from center.platform.settings import CenterSettings
    from center.store import db, district_store

    try:
        new = load_district(path)
    except DistrictError as exc:
        raise click.ClickException(str(exc)) from None

    async def run() -> None:
        async with await db.connect(CenterSettings().db.dsn) as conn:
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
    except db.DatabaseError as exc:
        raise click.ClickException(f"database: {exc}") from None


@center.command("set-password")
@click.argument("person_id")
def set_password_cmd(person_id: str) -> None:
    """Set PERSON_ID's login password: read from standard input when it is not a terminal
    (one line), else prompted twice. Never an argument (``ps`` shows those)."""
    from center.platform.settings import CenterSettings
    from center.services.passwords import PasswordError, set_password

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
    from center.platform.settings import CenterSettings
    from center.services.passwords import generate

    done = generate(CenterSettings().db.dsn, out, only_missing=only_missing)
    click.echo(f"{len(done)} password(s) written to {out} (mode 0600)")


def mqtt_group(edge_id_of: Callable[[Path], str]) -> click.Group:
    """``gridwatch mqtt``; ``edge_id_of`` reads an edge config file's id (the edge's own
    loader, handed down by the roof: the center never reads edge configs itself)."""

    @click.group()
    def mqtt() -> None:
        """MQTT broker security: accounts, ACL and TLS for Mosquitto (docs/security.md) and EMQX
        (docs/deployment.md)."""

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
    @click.option("--center-replicas", default=1, show_default=True, type=click.IntRange(1),
                  help="Center replicas: one account each (center-<i>.env), docs/scaling.md.")
    @click.option("--emqx", is_flag=True,
                  help="Also EMQX 5's users, ACL and settings in OUT/emqx/ (docs/deployment.md).")
    def mqtt_gen_auth(out_dir: Path, edges: str, district: Path | None,
                      edge_configs: tuple[Path, ...], center_user: str, broker: str,
                      rotate: bool, center_replicas: int, emqx: bool) -> None:
        """Write Mosquitto's password file and ACL (with --emqx, EMQX's users, ACL and
        settings too), and each account's credentials (0600).

        Existing passwords are kept unless --rotate; passwords are never printed."""
        from center.transport.mqtt_auth import AuthError, gen_auth

        ids = [e for e in edges.split(",") if e.strip()]
        if district is not None:
            from center.domain.district import DistrictError, load_district

            try:
                d = load_district(district)
            except DistrictError as exc:
                raise click.ClickException(str(exc)) from None
            ids += [c.edge_id for c in d.cameras.values() if c.edge_id]
        ids += [edge_id_of(path) for path in edge_configs]
        host, _, port = broker.rpartition(":")
        if not port.isdigit():
            raise click.BadParameter(f"{broker!r}: expected HOST:PORT", param_hint="--broker")
        try:
            files = gen_auth(ids, out_dir, center_user=center_user, rotate=rotate,
                             broker_host=host or "127.0.0.1", broker_port=int(port),
                             center_replicas=center_replicas)
        except AuthError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {files.password_file} and {files.acl_file} ({len(files.edges)} edges"
                   f" + {center_user}); add {out_dir}/mosquitto-auth.conf to mosquitto.conf")
        click.echo(f"center: {out_dir}/center.env; edges: {out_dir}/edges/<edge_id>"
                   ".broker.yaml (+ .secret, copy it to the edge, mode 0600)")
        if emqx:
            from center.transport.emqx_auth import write_emqx_auth

            made = write_emqx_auth(files)
            click.echo(f"EMQX: import {made.users}, ACL {made.acl}, include {made.settings}")

    return mqtt


@click.group()
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
    from center.platform.settings import CenterSettings
    from center.services.dataset_export import NothingToExport, export, load_frames
    from center.store.db import DatabaseError

    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty (an export never mixes with another)")
    try:
        frames = load_frames(CenterSettings().db.dsn, unjudged=unjudged,
                             since=since.replace(tzinfo=UTC) if since else None)
    except DatabaseError as exc:
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


@click.group()
def model() -> None:
    """Rolling out a candidate detector model (models/README.md, "The model loop")."""


def _db_run(work: Callable[[Any], Awaitable[_T]]) -> _T:
    """Run ``work(conn)`` on an autocommit connection to the center's database; a database
    or rollout error becomes the command's error message."""
    import asyncio

    from center.platform.settings import CenterSettings
    from center.services.model_rollout import RolloutError
    from center.store import db

    async def run() -> _T:
        async with await db.connect(CenterSettings().db.dsn, autocommit=True) as conn:
            return await work(conn)

    try:
        return asyncio.run(run())
    except (RolloutError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except db.DatabaseError as exc:
        raise click.ClickException(f"database: {exc}") from None


async def _canary_decision(conn: Any, rollout_id: int | None, cameras: tuple[str, ...],
                           since: datetime | None, min_days: float) -> Decision:
    """The canary check, for --rollout (its canary edges' cameras, each from when its edge
    confirmed the model) or for --camera/--since."""
    from center.services.canary import decide, decide_groups
    from center.services.model_rollout import canary_groups

    now = datetime.now(UTC)
    if rollout_id is not None:
        return await decide_groups(conn, await canary_groups(conn, rollout_id), now,
                                   min_days=min_days)
    assert since is not None
    return await decide(conn, cameras, since.replace(tzinfo=UTC), now, min_days=min_days)


def _echo_decision(d: Decision) -> None:
    for name, w in (("before", d.before), ("after", d.after)):
        click.echo(f"{name}: {w.start:%Y-%m-%d %H:%M} - {w.end:%Y-%m-%d %H:%M} UTC, "
                   f"{w.confirmed} confirmed, {w.false_alarms} false alarms, "
                   f"{w.false_alarms_per_camera_day:.2f} per camera-day")
    click.echo(d.why)


_MIN_DAYS = click.option("--min-days", type=click.FloatRange(min=0), default=7.0,
                         show_default=True, help="Decide only after this long on the canary.")


@model.command("canary-check")
@click.option("--rollout", "rollout_id", type=int, default=None,
              help="A rollout: its canary edges' cameras, each since its edge confirmed.")
@click.option("--camera", "cameras", multiple=True,
              help="A canary camera running the candidate (repeatable; with --since).")
@click.option("--since", type=click.DateTime(), default=None,
              help="When the candidate went live on the --camera cameras (UTC).")
@_MIN_DAYS
def canary_check_cmd(rollout_id: int | None, cameras: tuple[str, ...], since: datetime | None,
                     min_days: float) -> None:
    """Exit 0 (promote) when the canary cameras' false alarms per camera-day since the switch
    are no worse than theirs over as long a time before it, else 1 (hold)."""
    if rollout_id is not None and (cameras or since is not None):
        raise click.UsageError("give --rollout, or --camera and --since, not both")
    if rollout_id is None and (not cameras or since is None):
        raise click.UsageError("give --rollout ID, or --camera (repeatable) and --since")

    async def work(conn: Any) -> Any:
        return await _canary_decision(conn, rollout_id, cameras, since, min_days)

    d = _db_run(work)
    _echo_decision(d)
    sys.exit(0 if d.promote else 1)


@model.group("rollout")
def rollout() -> None:
    """A candidate model to canary edges, then to every edge or back (docs/model-rollout.md)."""


@rollout.command("start")
@click.option("--model", "model_name", required=True, help="Name in models/registry.yaml.")
@click.option("--path", "path", default=None,
              help="Weights on the edge boxes replacing the entry's (absolute path).")
@click.option("--sha256", "sha256", default=None,
              help="The weights' SHA-256, when the center cannot see the file.")
@click.option("--edge", "edge_ids", multiple=True, required=True,
              help="A canary edge (repeatable).")
def rollout_start(model_name: str, path: str | None, sha256: str | None,
                  edge_ids: tuple[str, ...]) -> None:
    """Assign a model to canary edges; they check the weights' SHA-256 and swap live."""
    from center.services.model_rollout import center_sha256, start
    from wire.protocol import ModelAssignment

    if path is not None and not path.startswith(("/", "~")):
        raise click.BadParameter("the path on the edge boxes must be absolute",
                                 param_hint="--path")
    try:
        digest = center_sha256(model_name, path, sha256)
        ModelAssignment.model_validate({"edge_id": edge_ids[0], "rollout_id": 1,
                                        "model": model_name, "path": path, "sha256": digest,
                                        "at": datetime.now(UTC)})
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    async def work(conn: Any) -> Any:
        return await start(conn, model_name, path, digest, edge_ids, datetime.now(UTC))

    rollout_id = _db_run(work)
    click.echo(f"rollout {rollout_id}: {model_name} (sha256 {digest[:12]}) assigned to "
               f"{', '.join(dict.fromkeys(edge_ids))}; the center publishes it and the edges "
               f"report back (`gridwatch model rollout status {rollout_id}`)")


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@rollout.command("status")
@click.argument("rollout_id", type=int, required=False)
def rollout_status(rollout_id: int | None) -> None:
    """One rollout and each of its edges (confirmed, refused with why, waiting), or the
    latest rollouts."""
    from center.services.model_rollout import describe_previous, edges, get, latest

    async def work(conn: Any) -> Any:
        if rollout_id is None:
            return await latest(conn), []
        return [await get(conn, rollout_id)], await edges(conn, rollout_id)

    rollouts, rows = _db_run(work)
    for r in rollouts:
        promoted = ""
        if r.promoted_at is not None:
            promoted = f", promoted {_when(r.promoted_at)}" + (
                f" (FORCED; the check said: {r.promote_check})" if r.promote_forced else "")
        back = f", rolled back {_when(r.rolled_back_at)}" if r.rolled_back_at else ""
        click.echo(f"rollout {r.id}: {r.model}{' ' + r.path if r.path else ''} "
                   f"sha256 {r.sha256[:12]}, {r.state}, started {_when(r.started_at)}"
                   f"{promoted}{back}")
    for e in rows:
        if e.refused_at is not None and (e.confirmed_at is None
                                         or e.refused_at > e.confirmed_at):
            what = f"REFUSED {_when(e.refused_at)}: {e.refusal}"
        elif e.confirmed_at is not None:
            what = f"confirmed {_when(e.confirmed_at)}"
        else:
            what = "waiting for the edge"
        if e.restored_at is not None:
            what += f"; previous model running again {_when(e.restored_at)}"
        click.echo(f"  {e.edge_id} ({'canary' if e.canary else 'promoted'}): {what}; "
                   f"before: {describe_previous(e.previous)}")
    if rollout_id is None and not rollouts:
        click.echo("no rollouts yet")


@rollout.command("promote")
@click.argument("rollout_id", type=int)
@click.option("--force", is_flag=True,
              help="Promote although the canary check says hold (recorded).")
@_MIN_DAYS
def rollout_promote(rollout_id: int, force: bool, min_days: float) -> None:
    """Assign the rollout's model to every edge, if the canary check says promote."""
    from center.services.model_rollout import RolloutError, promote

    async def work(conn: Any) -> Any:
        try:
            d = await _canary_decision(conn, rollout_id, (), None, min_days)
            why = d.why
        except (RolloutError, ValueError) as exc:
            d, why = None, f"hold: {exc}"
        forced = d is None or not d.promote
        if forced and not force:
            return d, why, forced, None
        return d, why, forced, await promote(conn, rollout_id, datetime.now(UTC), check=why,
                                             forced=forced)

    d, why, forced, done = _db_run(work)
    if d is not None:
        _echo_decision(d)
    else:
        click.echo(why)
    if done is None:
        raise click.ClickException(f"rollout {rollout_id} not promoted ({why}); "
                                   "--force promotes anyway, and is recorded")
    assigned, left_out = done
    click.echo(f"rollout {rollout_id} promoted{' (FORCED)' if forced else ''}: "
               f"assigned to {', '.join(assigned) or 'no other edge'}")
    for edge_id, reason in left_out.items():
        click.echo(f"  left out {edge_id}: {reason}")


@rollout.command("rollback")
@click.argument("rollout_id", type=int)
def rollout_rollback(rollout_id: int) -> None:
    """Assign every edge of the rollout the model it ran before."""
    from center.services.model_rollout import rollback

    async def work(conn: Any) -> Any:
        return await rollback(conn, rollout_id, datetime.now(UTC))

    assigned, left_alone = _db_run(work)
    click.echo(f"rollout {rollout_id} rolled back: previous model assigned to "
               f"{', '.join(assigned) or 'no edge'}")
    for edge_id, reason in left_alone.items():
        click.echo(f"  left alone {edge_id}: {reason}")

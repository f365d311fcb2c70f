"""``gridwatch edge ...``: run an edge worker or check its configuration.

Exit codes follow the project's CLI rule: 0 ok, 1 failure, 2 bad usage (click's own).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from edge.config import ConfigError, load_config


@click.group("edge")
def edge_group() -> None:
    """Edge worker: cameras -> detector -> zone rules -> MQTT alerts."""


@edge_group.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
def check_config(config_file: Path) -> None:
    """Validate CONFIG_FILE and say what is wrong, with the key path and line."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    zones = sum(len(c.zones) for c in config.cameras)
    click.echo(f"OK {config_file}: edge {config.edge_id}, {len(config.cameras)} cameras, "
               f"{zones} zones")


@edge_group.command("run")
@click.option("--config", "config_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Edge YAML file.")
@click.option("--until-eof", is_flag=True,
              help="Stop once every file camera has reached its end (loop: false).")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Replay speed for file cameras; 0 = as fast as possible.")
@click.option("--record", "record_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write alerts.jsonl and snapshot JPEGs to this folder.")
@click.option("--no-mqtt", is_flag=True, help="Do not connect to the broker (offline replay).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def run_command(config_file: Path, until_eof: bool, speed: float, record_dir: Path | None,
                no_mqtt: bool, verbose: bool) -> None:
    """Run the edge worker until Ctrl-C / SIGTERM (or the end of the files)."""
    from edge.runner import run  # loads OpenCV and ONNX Runtime; check-config does not need them

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    try:
        stats = run(config, until_eof=until_eof, speed=speed, record_dir=record_dir,
                    mqtt=not no_mqtt, config_dir=config_file.resolve().parent)
    except (FileNotFoundError, KeyError) as exc:  # missing weights, unknown model name
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"analysed {stats.frames_analysed} frames, dropped {stats.frames_dropped}, "
               f"sent {stats.alerts_sent} alerts")

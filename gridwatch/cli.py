"""The one ``gridwatch`` command. Exit codes: 0 ok, 1 failure, 2 bad usage (click's).

Each part owns its commands (``center/cli.py``, ``edge/cli.py``, ``simulators/cli.py``); this
module only puts them under one root and hands the center what it needs from the edge (reading
an edge config's id for ``mqtt gen-auth``), so the center never imports the edge."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from center.cli import center, dataset, model, mqtt_group
from edge.cli import edge_group, eval_command
from simulators.cli import demo_command, sim_group


def _edge_id_of(path: Path) -> str:
    from edge.config import ConfigError, load_config

    try:
        return load_config(path).edge_id
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """gridwatch: camera alerts to closed-loop tickets for city grid governance."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for name, command in (("center", center), ("mqtt", mqtt_group(_edge_id_of)),
                      ("dataset", dataset), ("model", model), ("edge", edge_group),
                      ("eval", eval_command), ("sim", sim_group), ("demo", demo_command)):
    cli.add_command(command, name)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

"""The one ``gridwatch`` command. Exit codes: 0 ok, 1 failure, 2 bad usage (click's).

Each part owns its commands (``center/cli.py``, ``edge/cli.py``); this module only puts them
under one root and hands the center what it needs from the edge (reading an edge config's id
for ``mqtt gen-auth``), so the center never imports the edge.

Commands from other distributions join through the entry-point group ``gridwatch.commands``:
the simulators (``simulators/pyproject.toml``, distribution ``gridwatch-simulators``) bring
``sim`` and ``demo`` that way, so the production package neither ships nor imports them. Run
without them, ``gridwatch demo`` says how to install them instead of "no such command"."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import click

from center.cli import center, dataset, model, mqtt_group
from edge.cli import edge_group, eval_command

#: The entry-point group other distributions register their command groups in.
COMMANDS_GROUP = "gridwatch.commands"
#: Commands that come with a distribution of their own, and how to get them.
OPTIONAL_COMMANDS = dict.fromkeys(
    ("sim", "demo"), "the simulators (distribution gridwatch-simulators) are not installed; "
    "from a checkout: pip install -e simulators/ (docs/simulators.md)")


def _edge_id_of(path: Path) -> str:
    from edge.config import ConfigError, load_config

    try:
        return load_config(path).edge_id
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


class _Root(click.Group):
    """The root group: an unknown command that an uninstalled (or broken) distribution would
    bring is bad usage with the reason and the remedy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Command name -> why its entry point could not be loaded.
        self.broken: dict[str, str] = {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.broken:
            raise click.UsageError(f"`gridwatch {cmd_name}`: {self.broken[cmd_name]}", ctx)
        if command is None and cmd_name in OPTIONAL_COMMANDS:
            raise click.UsageError(f"`gridwatch {cmd_name}`: {OPTIONAL_COMMANDS[cmd_name]}", ctx)
        return command


def build_cli(plugins: Iterable[EntryPoint]) -> _Root:
    """The root command with the parts' groups and the command groups of ``plugins``."""

    @click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
    def root(verbose: bool) -> None:
        """gridwatch: camera alerts to closed-loop tickets for city grid governance."""
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )

    assert isinstance(root, _Root)
    for name, command in (("center", center), ("mqtt", mqtt_group(_edge_id_of)),
                          ("dataset", dataset), ("model", model), ("edge", edge_group),
                          ("eval", eval_command)):
        root.add_command(command, name)
    for plugin in plugins:
        if plugin.name in root.commands:
            continue  # the parts' own, or a second install of the same distribution
        try:
            command = plugin.load()
        except (ImportError, AttributeError) as exc:  # installed, but broken: say so on use
            root.broken[plugin.name] = f"cannot load {plugin.value}: {exc}"
            continue
        if not isinstance(command, click.Command):
            root.broken[plugin.name] = f"{plugin.value} is not a click command"
            continue
        root.add_command(command, plugin.name)
    return root


cli = build_cli(entry_points(group=COMMANDS_GROUP))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

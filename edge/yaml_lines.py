"""Which line of a YAML file a validation error is about.

Pydantic names a bad value by its key path (``cameras[0].zones[1].dwel_s``); the person editing
the file wants the line. PyYAML's composer keeps the start mark of every node, so the path is
walked over the node tree (``yaml.compose``) rather than over the loaded data, which has lost
its positions. A path that leaves the file (a default filled in, a list form a validator
rewrote into a mapping) stops at the deepest node that exists: the line of the closest thing
that was written.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (None for an empty document); raises ``yaml.YAMLError``."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def line_of(root: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the node at ``loc`` (a pydantic error location); for a mapping key
    that is the key's own line, so an unknown key (a typo) points at itself. An empty
    document has only its first line.

    Example:
        >>> line_of(compose("a: 1\\nb:\\n  - x: 2\\n    y: 3\\n"), ("b", 0, "y"))
        4
    """
    if root is None:
        return 1
    node = root
    line = node.start_mark.line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1

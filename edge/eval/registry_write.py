"""Write calibrated ``min_score`` defaults into models/registry.yaml **in place**.

The registry is a commented, hand-edited file: re-dumping it through a YAML library would drop
every comment and reflow it. So only the model's ``min_score:`` mapping is rewritten (one flow
mapping, wrapped as the file writes it) under a comment saying where the values come from; a
comment left by an earlier calibration is replaced, not stacked. The result is parsed again and
must differ from the old file in that one value only, or nothing is written.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

#: First line of the comment a calibration leaves above the values (how a later one finds it).
MARK = "# min_score calibrated by `gridwatch eval --calibrate`"
WIDTH = 99


def flow_mapping(indent: str, values: dict[str, float]) -> list[str]:
    """``min_score: {a: 0.2, b: 0.3, ...}`` wrapped at ``WIDTH``, continuation lines aligned
    under the first key."""
    head = f"{indent}min_score: {{"
    items = [f"{k}: {v:g}" for k, v in values.items()]
    lines, line = [], head
    for i, item in enumerate(items):
        text = item + ("," if i < len(items) - 1 else "}")
        if line != head and not line.endswith(" ") and len(line) + 1 + len(text) > WIDTH:
            lines.append(line)
            line = " " * len(head) + text
        else:
            line += ("" if line == head else " ") + text
    return [(line if items else head + "}") + "\n" for line in [*lines, line]]


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t"))]


def set_min_scores(path: Path, model: str, values: dict[str, float], note: list[str]) -> str:
    """Replace model ``model``'s ``min_score`` in the registry file ``path`` (added when it
    has none) by ``values``, with ``note`` (lines of text) as a comment above it. Returns the
    new text; raises ValueError when the model is not there or the edit would change anything
    else."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines)
                  if re.match(rf"{re.escape(model)}:\s*(#.*)?$", line)), None)
    if start is None:
        raise ValueError(f"{path}: no top-level entry {model!r}")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t"):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines before the next entry are not the entry's
    body = range(start + 1, end)
    first = next((i for i in body if re.match(r"\s+min_score:", lines[i])), None)
    indent = _indent(lines[start + 1]) if end > start + 1 else "  "
    if first is None:
        first = last = end
    else:
        indent = _indent(lines[first])
        last = first
        depth = lines[first].count("{") - lines[first].count("}")
        while depth > 0 and last + 1 < end:
            last += 1
            depth += lines[last].count("{") - lines[last].count("}")
        last += 1
        top = first  # an earlier calibration's comment directly above goes too
        while top > start + 1 and lines[top - 1].strip().startswith("#   "):
            top -= 1
        if top > start + 1 and lines[top - 1].strip() == MARK:
            first = top - 1
    comment = [f"{indent}{MARK}\n"] + [f"{indent}#   {n}\n" for n in note]
    new = "".join(lines[:first] + comment + flow_mapping(indent, values) + lines[last:])
    old_doc, new_doc = yaml.safe_load(text), yaml.safe_load(new)
    old_doc[model] = {**old_doc[model], "min_score": values}
    if new_doc != old_doc:
        raise ValueError(f"{path}: editing {model}.min_score in place would change more than "
                         "that value; nothing written")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(new)
    os.replace(tmp, path)
    return new

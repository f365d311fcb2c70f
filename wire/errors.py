"""What a pydantic ``ValidationError`` found, said one way everywhere: ``key path: message``.

Config files, pushed configs, MQTT payloads that become dead letters and the API's 422s all
report bad input to a person who has to find the key and fix it, so they share one key-path
form (``cameras[0].zones[1].dwell_s``: the YAML a person edits, not pydantic's tuple) and one
rule for showing the wrong value: a value the person wrote is echoed, shortened, so they can
see which one is meant; a missing key has no value to echo. Callers that must not repeat
their input (the API, where a value can be a password; MQTT dead letters, which keep the
payload anyway) pass ``with_input=False``.

The files those documents come from fail before validation in the same few ways (missing, not
UTF-8, not YAML); ``read_text`` and ``parse_yaml`` say those once too, naming the file and,
for YAML, the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

#: A pydantic error location: keys and list indexes, outermost first.
Loc = tuple[int | str, ...]

#: Longest echo of a wrong value (its ``repr``); longer ones end in "...".
MAX_ECHO = 80


class Problem(NamedTuple):
    """One error: where it is (for callers that also point at a line) and its text."""

    loc: Loc
    text: str


def key_path(loc: Loc) -> str:
    """``("cameras", 0, "zones", 1, "dwell_s")`` -> ``cameras[0].zones[1].dwell_s``; the
    document itself (an empty path) is ``(top level)``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def shorten(value: Any) -> str:
    """``repr(value)``, cut to ``MAX_ECHO`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO - 3] + "..."


def problems(exc: ValidationError, prefix: Loc = (), *, with_input: bool = True
             ) -> list[Problem]:
    """Each error of ``exc`` as ``key path: message``, with ``(got <value>)`` when
    ``with_input`` and the key was given. ``prefix`` is where the validated document sits in
    a larger one (``("config",)`` for the config inside a config-state message)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err["loc"])
        text = f"{key_path(loc)}: {err['msg']}"
        if with_input and err["type"] != "missing":
            text += f" (got {shorten(err['input'])})"
        out.append(Problem(loc, text))
    return out


def describe(exc: ValidationError, prefix: Loc = (), *, with_input: bool = True,
             sep: str = "; ") -> str:
    """Every error of ``exc`` (see ``problems``) on one line, or one per line with
    ``sep="\\n"``."""
    return sep.join(p.text for p in problems(exc, prefix, with_input=with_input))


def read_text(path: Path, error: type[Exception]) -> str:
    """The UTF-8 text of ``path``; ``error`` naming the file when it cannot be read or is not
    UTF-8 (a config saved in a legacy encoding)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_yaml(text: str, path: Path, error: type[Exception]) -> Any:
    """The YAML document ``text`` (read from ``path``); ``error`` naming the file, line and
    column when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}:{where} invalid YAML: {problem}") from None


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """``parse_yaml(read_text(path))``: a YAML file, every failure an ``error`` naming it."""
    return parse_yaml(read_text(path, error), path, error)

"""The model registry (models/registry.yaml) as both sides read it: the edge loads a detector
from an entry, the center names the weights a model rollout must carry and their SHA-256
(docs/model-rollout.md); one reader, so the two never disagree on a path or a digest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from wire.paths import MODELS_DIR, data_dir, shared_file

REGISTRY_FILE = MODELS_DIR / "registry.yaml"


def registry() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8")) or {}


def model_names() -> list[str]:
    return sorted(registry())


def model_min_scores(name: str) -> dict[str, float]:
    """The registry entry's per-class ``min_score`` defaults (our class -> score; ``rider``:
    the least score of a person box that makes a two-wheeler ridden); {} when it has none,
    so an unknown model falls back to the rules' own default instead of failing here."""
    entry = registry().get(name) or {}
    return {str(k): float(v) for k, v in (entry.get("min_score") or {}).items()}


def resolve_path(path: str) -> Path:
    """``shared:rel`` -> the shared folder; ``data:rel`` -> the local data folder (.gridwatch/,
    git-ignored, where downloaded weights go); absolute or ``~`` paths as they are; anything
    else relative to models/."""
    if path.startswith("shared:"):
        return shared_file(path.removeprefix("shared:"))
    if path.startswith("data:"):
        return data_dir() / path.removeprefix("data:")
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else MODELS_DIR / path


def entry_weights_path(name: str, entry: dict[str, Any], override: str | Path | None) -> Path:
    """Where the weights should be (not checked); raises when nothing names them."""
    if override is not None:
        return Path(override).expanduser()
    if not entry.get("path"):
        raise FileNotFoundError(f"model {name!r} has no path in {REGISTRY_FILE}; give the file "
                                f"as detector.path in the edge config")
    return resolve_path(str(entry["path"]))


def weights_path(name: str, override: str | Path | None = None) -> Path:
    """Where model ``name``'s weights are (``override``: the ``path`` replacing the registry's),
    not checked; raises ``KeyError`` for a name the registry lacks and ``FileNotFoundError``
    when nothing names the weights. The model rollout hashes this file."""
    entries = registry()
    if name not in entries:
        raise KeyError(f"unknown model {name!r} (known in {REGISTRY_FILE}: {sorted(entries)})")
    return entry_weights_path(name, entries[name], override)


def weights_sha256(path: Path) -> str:
    """SHA-256 of a weights file; of a folder (an OpenVINO export), of its files' relative
    names and SHA-256s in name order, so the center and the edge get the same digest of the
    same export wherever it lies."""
    def of_file(file: Path) -> str:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    if not path.is_dir():
        return of_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{of_file(file)}\n".encode())
    return digest.hexdigest()

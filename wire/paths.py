"""Where things live on disk: the repository's own data and the shared media/weights beside it."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DASHBOARD_DIR = REPO / "dashboard"
MODELS_DIR = REPO / "models"
DEFAULTS_DIR = REPO / "center" / "defaults"


def data_dir() -> Path:
    """Local state of `gridwatch demo` (database cluster, broker data, logs) and downloaded
    weights; git-ignored. Read when asked, like ``shared_dir``, so a process (or a test) that
    sets GRIDWATCH_DATA_DIR later is heard."""
    return Path(os.environ.get("GRIDWATCH_DATA_DIR", REPO / ".gridwatch"))


DATA_DIR = data_dir()


def shared_dir() -> Path:
    """The third-party media and weights that sit beside the checkout (never copied into it)."""
    return Path(os.environ.get("GRIDWATCH_SHARED", REPO.parent / "shared")).resolve()


def shared_file(relative: str) -> Path:
    """A file under the shared folder, or a clear error naming what is missing and where."""
    path = shared_dir() / relative
    if not path.exists():
        raise FileNotFoundError(
            f"missing shared file {path} (set GRIDWATCH_SHARED to the folder holding "
            f"media/ and models/, or use your own camera URL and model)"
        )
    return path

"""People's passwords from the command line: ``gridwatch center set-password`` and
``gridwatch center gen-passwords`` (docs/security.md).

A password never travels as a command-line argument (other users see those in ``ps``): it is
read from standard input or a prompt, or generated and written to a file only its owner can
read (mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path

from center.services.auth import hash_password, new_password
from center.store import db
from center.store.people import active_people, set_password_hash

MIN_PASSWORD = 8


class PasswordError(ValueError):
    pass


def set_password(dsn: str, person_id: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordError(f"password too short: at least {MIN_PASSWORD} characters")
    with db.connect_sync(dsn) as conn:
        if not set_password_hash(conn, person_id, hash_password(password)):
            raise PasswordError(f"no person {person_id!r} in the district"
                                " (gridwatch center import-district, or start the center once)")


def people(dsn: str, *, only_missing: bool) -> list[tuple[str, str, str]]:
    """(id, role, name) of the active people, those without a password only if asked."""
    with db.connect_sync(dsn) as conn:
        return active_people(conn, only_missing=only_missing)


def write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def generate(dsn: str, out: Path, *, only_missing: bool) -> list[tuple[str, str, str]]:
    """Random passwords for the district's people, stored hashed; the clear text goes only to
    ``out`` (mode 0600, one ``person_id<TAB>role<TAB>password`` line each). Returns who got one."""
    chosen = people(dsn, only_missing=only_missing)
    lines = [("# gridwatch passwords: person_id, role, password."
              " Keep private; delete once handed out.\n")]
    with db.connect_sync(dsn) as conn, conn.transaction():
        for person_id, role, _name in chosen:
            password = new_password()
            set_password_hash(conn, person_id, hash_password(password))
            lines.append(f"{person_id}\t{role}\t{password}\n")
        write_private(out, "".join(lines))  # inside the transaction: no file, no new hashes
    return chosen


def ensure_credentials(dsn: str, path: Path) -> list[tuple[str, str, str]]:
    """For the demo: on the first start, random passwords for everyone into ``path`` (0600);
    later, only people who have none yet (added to the file). Returns who got one now."""
    if not path.exists():
        return generate(dsn, path, only_missing=False)
    missing = people(dsn, only_missing=True)
    if not missing:
        return []
    extra = path.with_name(path.name + ".new")
    done = generate(dsn, extra, only_missing=True)
    lines = [ln for ln in extra.read_text(encoding="utf-8").splitlines(keepends=True)
             if not ln.startswith("#")]
    write_private(path, path.read_text(encoding="utf-8") + "".join(lines))
    extra.unlink()
    return done

"""The notes the center itself writes into a ticket's ledger (routing, the camera's checks,
escalations, automatic closes), and how to read one back as a key with arguments.

The stored text stays English (logs, CSV exports, the database itself); pages say it in the
reader's language from the key (``note_key`` / ``note_args`` in the ledger's JSON). A note a
person typed matches no pattern and is shown as written.
"""

from __future__ import annotations

import re
from typing import Any

ROUTED = "routed to {person} ({post})"
CAMERA_AGAIN = "the camera sees the violation again"
CAMERA_CLEAR = "camera sees the place clear"
CAMERA_CLEAR_EARLY = "camera sees the place clear before the case was handled"
CAMERA_CLEAR_OTHER = ("camera sees the place clear, but this ends alert {ended}, not {violation}"
                      " that opened the case: not a verification")
CLOSED_AFTER_RATING = "closed after evaluation"
CLOSED_UNRATED = "closed: no evaluation within the time limit"
ESCALATED = "level {level}: {reason}; notified {people}"
STAGE_LIMIT = "{stage} time limit passed"  # stage: accept, handle, overall
UNACKNOWLEDGED = "not acknowledged in time"
NOBODY = "nobody (no one holds that post)"
#: The register row of a case an operator filed from a camera's frame: who, which camera, and
#: the box they drew (x0,y0,x1,y1 as fractions of the frame), kept as data in the ledger.
VIDEO_PATROL = "filed from video patrol of camera {camera} by {person}; box {box}"

_FIXED = {CAMERA_AGAIN: "camera_again", CAMERA_CLEAR: "camera_clear",
          CAMERA_CLEAR_EARLY: "camera_clear_early", CLOSED_AFTER_RATING: "closed_after_rating",
          CLOSED_UNRATED: "closed_unrated"}
_ROUTED = re.compile(r"routed to (?P<person>\S+) \((?P<role>[a-z_]+)(?: (?P<post>[AB]) post)?\)")
_ESCALATED = re.compile(r"level (?P<level>\d+): (?P<reason>.+); notified (?P<people>.+)")
_STAGE = re.compile(r"(?P<stage>\w+) time limit passed")
_VIDEO_PATROL = re.compile(r"filed from video patrol of camera (?P<camera>\S+) by (?P<person>\S+);"
                           r" box (?P<box>[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+)")
_CLEAR_OTHER = re.compile(r"camera sees the place clear, but this ends alert \S+, not \S+"
                          r" that opened the case: not a verification")


def routed(person_id: str, role: str, post: str | None) -> str:
    return ROUTED.format(person=person_id, post=f"{role} {post} post" if post else role)


def video_patrol(camera_id: str, person_id: str, box: tuple[float, float, float, float]) -> str:
    return VIDEO_PATROL.format(camera=camera_id, person=person_id,
                               box=",".join(f"{v:.4f}" for v in box))


def escalated(level: int, reason: str, people: list[str]) -> str:
    return ESCALATED.format(level=level, reason=reason, people=", ".join(people) or NOBODY)


def read(note: str) -> tuple[str, dict[str, Any]] | None:
    """(key, arguments) of a note the center wrote; None for a person's own words."""
    if note in _FIXED:
        return _FIXED[note], {}
    if _CLEAR_OTHER.fullmatch(note):
        return "camera_clear_other", {}
    if m := _ROUTED.fullmatch(note):
        return "routed", {"person": m["person"], "role": m["role"], "post": m["post"]}
    if m := _VIDEO_PATROL.fullmatch(note):
        return "video_patrol", {"camera": m["camera"], "person": m["person"],
                                "box": [float(v) for v in m["box"].split(",")]}
    if m := _ESCALATED.fullmatch(note):
        stage = _STAGE.fullmatch(m["reason"])
        reason = (f"limit_{stage['stage']}" if stage
                  else "unacknowledged" if m["reason"] == UNACKNOWLEDGED else None)
        if reason is None:
            return None
        people = [] if m["people"] == NOBODY else m["people"].split(", ")
        return "escalated", {"level": int(m["level"]), "reason": reason, "people": people}
    return None

"""Video patrol (视频巡查): an operator watching a camera live grabs the frame, draws a box
around what is wrong and files a case from it (docs/video.md "Video patrol").

The case is opened like any hand-reported one (``tickets.intake_at_camera``): routed by the
camera's micro-grid exactly as the camera's alerts are, the frame as its picture, source
``video_patrol``. The box is kept as data in the ledger's ``register`` note (ticket_notes), so
the frame stays the bytes the operator saw and the box can be drawn over it by any page.
"""

from __future__ import annotations

from dataclasses import dataclass

from center.domain import ticket_notes
from center.domain.context import Context
from center.services import tickets
from center.services.auth import Principal
from center.services.live import why_not_watch
from center.store.db import Connection

SOURCE = "video_patrol"


@dataclass(frozen=True)
class Box:
    """What is wrong in the frame, as fractions of its width and height (0..1, top-left
    origin), so it holds whatever size the browser drew the frame at."""

    x0: float
    y0: float
    x1: float
    y1: float

    def problem(self) -> str | None:
        """Why this is not a box, or None."""
        if not all(0.0 <= v <= 1.0 for v in (self.x0, self.y0, self.x1, self.y1)):
            return "box coordinates must be fractions of the frame, 0..1"
        if self.x0 >= self.x1 or self.y0 >= self.y1:
            return "box must have x0 < x1 and y0 < y1 (top-left, then bottom-right)"
        return None


async def why_not_file(conn: Connection, who: Principal, ctx: Context,
                       camera_id: str) -> str | None:
    """Why ``who`` may not file a case from ``camera_id``'s video, or None. Whoever may watch
    the camera live may file from it (operators and admins every camera, leaders their
    area's, a worker their own micro-grid's), as anyone but engineers may file a patrol
    report; engineers only read cases."""
    if who.role == "engineer":
        return f"engineers do not file cases; {who.id} is engineer"
    return await why_not_watch(conn, who, ctx.district, camera_id)


async def file_case(conn: Connection, ctx: Context, *, camera_id: str, event_type: str,
                    box: Box, note: str, frame: bytes, actor_id: str) -> tickets.Change:
    """Open the case (in the caller's transaction); the caller checked who and what."""
    return await tickets.intake_at_camera(
        conn, ctx, source=SOURCE, event_type=event_type, camera_id=camera_id,
        description=note, actor_id=actor_id,
        note=ticket_notes.video_patrol(camera_id, actor_id, (box.x0, box.y0, box.x1, box.y1)),
        photo=(frame, "image/jpeg"))

"""The JSON shapes screens see: rows joined with names from the district and code table.

One shape per thing, used by the REST API and the websocket alike, so a page can replace what it
loaded with what it is pushed.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from center.domain import ticket_notes
from center.domain.context import Context
from center.domain.ticket_states import actions_for
from center.store.alerts import AlertRow, CameraStatusRow
from center.store.tickets import LedgerEntry, Ticket


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@cache
def _actions(state: str, role: str) -> tuple[str, ...]:
    """``actions_for``, worked out once per (state, role): every pushed ticket needs it."""
    return tuple(actions_for(state, role))


class Views:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def event_name(self, code: str) -> str:
        et = self.ctx.event_types.get(code)
        return et.zh if et else code

    def alert(self, row: AlertRow) -> dict[str, Any]:
        return {
            "alert_id": str(row.alert_id), "seq": row.seq, "kind": row.kind,
            "edge_id": row.edge_id, "camera_id": row.camera_id, "zone_id": row.zone_id,
            "event_type": row.event_type, "event_name": self.event_name(row.event_type),
            "label": row.label, "score": round(row.score, 3), "bbox": list(row.bbox),
            "started_at": _iso(row.started_at), "last_seen_at": _iso(row.last_seen_at),
            "received_at": _iso(row.received_at),
            "snapshot_url": f"/api/v1/alerts/{row.alert_id}/snapshot.jpg"
            if row.has_snapshot else None,
            "ticket_id": row.ticket_id,
            # Made up by a simulator (the demo): screens badge it 模拟 / SIMULATED.
            "simulated": row.simulated,
        }

    def ticket(self, t: Ticket) -> dict[str, Any]:
        d = self.ctx.district
        cam = d.cameras.get(t.camera_id or "")
        area = d.areas.get(t.micro_grid_id or "")
        person = d.people.get(t.assignee_id or "")
        dept = d.departments.get(t.department_id or "")
        role = self.ctx.role_of(t.assignee_id) if t.assignee_id else None
        now = self.ctx.clock.now()
        return {
            "id": t.id, "state": t.state, "source": t.source, "event_type": t.event_type,
            # Opened by a simulated alert (the demo): screens badge it 模拟 / SIMULATED.
            "simulated": t.simulated,
            "event_name": self.event_name(t.event_type),
            "camera_id": t.camera_id,
            "camera_name": cam.name if cam else t.camera_id,
            "zone_id": t.zone_id, "micro_grid_id": t.micro_grid_id,
            "micro_grid_name": area.name if area else None, "grid_id": t.grid_id,
            "assignee_id": t.assignee_id, "assignee_name": person.name if person else None,
            # After a hand-off: the department whose queue the case is in.
            "department_id": t.department_id,
            "department_name": dept.name if dept else None,
            "lon": t.lon if t.lon is not None else (cam.lon if cam else None),
            "lat": t.lat if t.lat is not None else (cam.lat if cam else None),
            "description": t.description, "priority": t.priority, "emergency": t.emergency,
            "opened_at": _iso(t.opened_at), "updated_at": _iso(t.updated_at),
            "dispatched_at": _iso(t.dispatched_at), "accepted_at": _iso(t.accepted_at),
            "handled_at": _iso(t.handled_at), "verified_at": _iso(t.verified_at),
            "closed_at": _iso(t.closed_at), "due_at": _iso(t.due_at),
            "stage_due_at": _iso(t.stage_due_at),
            "overdue": bool(t.closed_at is None and (
                (t.stage_due_at and t.stage_due_at < now) or (t.due_at and t.due_at < now))),
            "escalation_level": t.escalation_level, "acknowledged_by": t.acknowledged_by,
            "rework_count": t.rework_count, "extension_min": t.extension_min,
            "satisfaction": t.satisfaction, "alert_count": t.alert_count,
            "last_alert_id": str(t.last_alert_id) if t.last_alert_id else None,
            # The case's picture: the camera's latest evidence, else the photo it was filed with.
            "snapshot_url": f"/api/v1/alerts/{t.last_alert_id}/snapshot.jpg"
            if t.last_alert_id else self.photo_url(t),
            "sent_back": t.sent_back,
            "public_url": f"/t/{t.public_token}",
            "allowed_actions": list(_actions(t.state, role)) if role else [],
        }

    @staticmethod
    def photo_url(t: Ticket) -> str | None:
        """The photo a hand-reported case was filed with (a resident's, a patrol worker's)."""
        return f"/api/v1/tickets/{t.id}/attachments/{t.photo_id}" if t.photo_id else None

    def ledger(self, e: LedgerEntry) -> dict[str, Any]:
        said = ticket_notes.read(e.note)  # the center's own notes: pages say them in their language
        return {"at": _iso(e.at), "actor_id": e.actor_id, "action": e.action,
                "from_state": e.from_state, "to_state": e.to_state, "note": e.note,
                "note_key": said[0] if said else None, "note_args": said[1] if said else None,
                "alert_id": str(e.alert_id) if e.alert_id else None,
                "attachments": [f"/api/v1/tickets/{e.ticket_id}/attachments/{a}"
                                for a in e.attachments]}

    def camera(self, camera_id: str, status: CameraStatusRow | None) -> dict[str, Any]:
        cam = self.ctx.district.cameras.get(camera_id)
        return {
            "id": camera_id, "name": cam.name if cam else camera_id,
            "edge_id": status.edge_id if status else (cam.edge_id if cam else None),
            "micro_grid_id": self.ctx.district.micro_grid_of(camera_id),
            "lon": cam.lon if cam else None, "lat": cam.lat if cam else None,
            "state": status.state if status else "unknown",
            "detail": status.detail if status else "",
            "updated_at": _iso(status.updated_at) if status else None,
        }

"""The JSON shapes screens see: rows joined with names from the district and code table.

One shape per thing, used by the REST API and the websocket alike, so a page can replace what it
loaded with what it is pushed.
"""

from __future__ import annotations

from typing import Any

from center.db.queries import AlertRow, CameraStatusRow
from center.district import District
from center.event_types import EventType
from center.tickets.service import Ticket
from center.tickets.states import actions_for

_ROLE_OF = {"worker": "worker", "micro_grid_leader": "leader", "grid_leader": "leader"}


class Views:
    def __init__(self, district: District, event_types: dict[str, EventType]) -> None:
        self.district = district
        self.event_types = event_types

    def role_of(self, person_id: str) -> str | None:
        person = self.district.people.get(person_id)
        return None if person is None else _ROLE_OF[person.role]

    def _event_name(self, code: str) -> str:
        et = self.event_types.get(code)
        return et.zh if et else code

    def alert(self, row: AlertRow) -> dict[str, Any]:
        return {
            "alert_id": str(row.alert_id), "seq": row.seq, "kind": row.kind,
            "edge_id": row.edge_id, "camera_id": row.camera_id, "zone_id": row.zone_id,
            "event_type": row.event_type, "event_name": self._event_name(row.event_type),
            "label": row.label, "score": round(row.score, 3), "bbox": list(row.bbox),
            "started_at": row.started_at.isoformat(), "last_seen_at": row.last_seen_at.isoformat(),
            "received_at": row.received_at.isoformat(),
            "snapshot_url": f"/api/v1/alerts/{row.alert_id}/snapshot.jpg"
            if row.has_snapshot else None,
            "ticket_id": row.ticket_id,
        }

    def ticket(self, t: Ticket) -> dict[str, Any]:
        cam = self.district.cameras.get(t.camera_id)
        area = self.district.areas.get(t.micro_grid_id or "")
        person = self.district.people.get(t.assignee_id or "")
        role = self.role_of(t.assignee_id) if t.assignee_id else None
        return {
            "id": t.id, "state": t.state, "event_type": t.event_type,
            "event_name": self._event_name(t.event_type),
            "camera_id": t.camera_id, "camera_name": cam.name if cam else t.camera_id,
            "zone_id": t.zone_id, "micro_grid_id": t.micro_grid_id,
            "micro_grid_name": area.name if area else None,
            "assignee_id": t.assignee_id, "assignee_name": person.name if person else None,
            "opened_at": t.opened_at.isoformat(), "updated_at": t.updated_at.isoformat(),
            "closed_at": t.closed_at.isoformat() if t.closed_at else None,
            "alert_count": t.alert_count, "last_alert_id": str(t.last_alert_id),
            "snapshot_url": f"/api/v1/alerts/{t.last_alert_id}/snapshot.jpg",
            "allowed_actions": actions_for(t.state, role) if role else [],
        }

    def camera(self, camera_id: str, status: CameraStatusRow | None) -> dict[str, Any]:
        cam = self.district.cameras.get(camera_id)
        return {
            "id": camera_id, "name": cam.name if cam else camera_id,
            "edge_id": status.edge_id if status else (cam.edge_id if cam else None),
            "micro_grid_id": self.district.micro_grid_of(camera_id),
            "lon": cam.lon if cam else None, "lat": cam.lat if cam else None,
            "state": status.state if status else "unknown",
            "detail": status.detail if status else "",
            "updated_at": status.updated_at.isoformat() if status else None,
        }

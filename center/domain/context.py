"""What the center's parts share at run time: the district, code tables, limits and the clock.

One object instead of module globals, so tests run several centers (and a hand-moved clock)
in one process; the district is replaced here when an import or an assignment changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from center.domain.district import District
from center.domain.event_types import EventType
from center.domain.time_limits import TimeLimits
from center.platform.clock import Clock
from center.platform.settings import PresenceSettings


@dataclass
class Context:
    district: District
    event_types: dict[str, EventType]
    limits: TimeLimits
    clock: Clock
    #: Emergency scopes in force ("district" or grid ids), mirrored from emergency_modes.
    emergency_scopes: set[str] = field(default_factory=set)
    #: Presence thresholds and whether routing chooses the nearest on-duty worker itself
    #: (``auto_assign_nearest``; center/services/nearest_worker.py).
    presence: PresenceSettings = field(default_factory=PresenceSettings)

    def in_emergency(self, micro_grid_id: str | None) -> bool:
        if "district" in self.emergency_scopes:
            return True
        grid = self.district.grid_of(micro_grid_id)
        return grid is not None and grid in self.emergency_scopes

    def role_of(self, person_id: str) -> str | None:
        """The state machine's role for a person of the district (None: unknown). An admin acts
        as an operator; an engineer has no role in the state machine (its own name, which no
        transition allows)."""
        person = self.district.people.get(person_id)
        if person is None or not person.active:
            return None
        return {"worker": "worker", "micro_grid_leader": "leader", "grid_leader": "leader",
                "department_staff": "department", "operator": "operator",
                "admin": "operator", "engineer": "engineer"}[person.role]

"""Fan-out of committed ticket changes to the wall, the phones and the outbound notifiers.

Every writer of tickets ends the same way: the routes (center/api), MQTT ingest and the
deadline timers (center/services/scheduler.py) each hand their committed ``Change`` to one
``Announcer``, built once by the app (center/app.py) beside the websocket hub it publishes
to (center/transport/push.py). It lives here, not in the HTTP layer, so ingest and the timers need
nothing of the API to be heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from center.services.tickets import Change
from center.services.views import Views
from center.transport.push import Hub

if TYPE_CHECKING:
    from center.services.notify import Notifications


@dataclass
class Announcer:
    """Called with each committed ticket change; never waits."""

    views: Views
    hub: Hub
    notify: Notifications | None = None

    def __call__(self, change: Change) -> None:
        """Push a ticket change to the wall, its assignee and everyone it notifies.

        The wall gets it at once. With notifications running, the phones get it as soon as
        their notification rows are written (with ``notification_id`` to acknowledge), and the
        outbound notifiers are queued; nothing here waits. A touch (another alert at an open
        ticket, nobody notified) goes to the assignee's phones at once, without a row: at
        1,000 alerts/s nearly every alert is one, and a row, a push after it and a receipt
        each cost more than the push itself (docs/notifications.md); the phone loads its
        cases whenever it connects, so a touch it missed is never news it lacks."""
        t = change.ticket
        recipients = set(change.notify) | ({t.assignee_id} if t.assignee_id else set())
        data = self.views.ticket(t)
        if change.notify:
            data["notify"] = change.notify
        if self.notify is None or (change.touch and not change.notify):
            self.hub.publish("ticket", data, recipients=recipients)
            return
        self.hub.publish("ticket", data)
        self.notify.submit(change, data, recipients)

"""What route handlers take from the running app, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from psycopg_pool import AsyncConnectionPool

from center.context import Context
from center.push import Hub
from center.tickets.service import Change
from center.views import Views

if TYPE_CHECKING:
    from center.notify import Notifications


@dataclass
class Center:
    """The running center's parts, as route handlers need them."""

    pool: AsyncConnectionPool
    ctx: Context
    views: Views
    hub: Hub
    notify: Notifications | None = None

    def announce(self, change: Change) -> None:
        """Push a ticket change to the wall, its assignee and everyone it notifies.

        The wall gets it at once. With notifications running, the phones get it as soon as
        their notification rows are written (with ``notification_id`` to acknowledge), and the
        outbound notifiers are queued; nothing here waits."""
        t = change.ticket
        recipients = set(change.notify) | ({t.assignee_id} if t.assignee_id else set())
        data = self.views.ticket(t)
        if change.notify:
            data["notify"] = change.notify
        if self.notify is None:
            self.hub.publish("ticket", data, recipients=recipients)
            return
        self.hub.publish("ticket", data)
        self.notify.submit(change, data, recipients)

    def role(self, actor_id: str) -> str:
        role = self.ctx.role_of(actor_id)
        if role is None:
            raise HTTPException(403, f"unknown actor {actor_id!r}")
        return role


def _center(request: Request) -> Center:
    return request.app.state.center


CenterDep = Annotated[Center, Depends(_center)]

"""What route handlers take from the running app, in one place."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg_pool import AsyncConnectionPool

from center.auth import InvalidToken, Principal, TokenGenerations, bearer, read_claims
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
    #: Signs and checks bearer tokens (center/auth.py); set in the app's lifespan.
    secret: str = field(default="", repr=False)
    token_ttl_s: float = 12 * 3600
    limiter: RateLimits | None = None
    #: Each person's current token generation: older tokens are revoked (center/auth.py).
    tokens: TokenGenerations = field(default_factory=TokenGenerations)

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


    def principal(self, token: str | None) -> Principal:
        """The active person a token names; InvalidToken otherwise (also when the token was
        revoked: no query, ``tokens`` is in memory)."""
        person_id, generation = read_claims(self.secret, token)
        person = self.ctx.district.people.get(person_id)
        if person is None or not person.active:
            raise InvalidToken(f"person {person_id!r} is not an active person of the district")
        self.tokens.check(person_id, generation)
        return Principal(person, generation)


class RateLimits:
    """In-memory moving-window limits (the ``limits`` library), one center process each."""

    def __init__(self, *, login_person: str, login_ip: str, public_ip: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.rules: dict[str, RateLimitItem] = {
            "login_person": parse(login_person), "login_ip": parse(login_ip),
            "public_ip": parse(public_ip)}

    def hit(self, rule: str, key: str, what: str) -> None:
        """Count one attempt; 429 with Retry-After when over the limit."""
        item = self.rules[rule]
        if self._limiter.hit(item, rule, key):
            return
        reset, _ = self._limiter.get_window_stats(item, rule, key)
        retry = max(1, math.ceil(reset - time.time()))
        raise HTTPException(429, f"too many {what}: limit {item}; retry in {retry} s",
                            headers={"Retry-After": str(retry)})


def _center(request: Request) -> Center:
    return request.app.state.center


CenterDep = Annotated[Center, Depends(_center)]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _principal(request: Request) -> Principal:
    center: Center = request.app.state.center
    try:
        return center.principal(bearer(request.headers.get("authorization")))
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None


def _principal_or_query(request: Request) -> Principal:
    """For pictures an ``<img>`` loads (it cannot send a header): ``?token=`` is accepted too
    (scrubbed from the logs: center/auth.py)."""
    center: Center = request.app.state.center
    token = bearer(request.headers.get("authorization")) or request.query_params.get("token")
    try:
        return center.principal(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None


#: The logged-in person (401 with ``WWW-Authenticate: Bearer`` without a valid token).
Actor = Annotated[Principal, Depends(_principal)]
ImageActor = Annotated[Principal, Depends(_principal_or_query)]


def same_actor(actor: Principal, actor_id: str | None) -> str:
    """The acting person's id. A body's ``actor_id`` (from before logins) must be them."""
    if actor_id is not None and actor_id != actor.id:
        raise HTTPException(403, f"actor_id {actor_id!r} is not the logged-in person {actor.id!r}"
                                 " (the actor is the token's person; actor_id may be left out)")
    return actor.id


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def public_form(request: Request) -> None:
    """Rate limit for residents' forms (per client address)."""
    center: Center = request.app.state.center
    if center.limiter is not None:
        center.limiter.hit("public_ip", client_ip(request), "public submissions from this address")


PublicForm = Depends(public_form)

"""What route handlers take from the running app, in one place."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse

from center.domain.context import Context
from center.services.auth import (
    SIG_PARAM,
    Hashing,
    InvalidToken,
    Principal,
    TokenGenerations,
    bearer,
    read_claims,
    read_signed_url,
)
from center.services.clips import ClipService
from center.services.views import Views
from center.store import rate_limits
from center.store.db import Pool
from center.transport.fanout import Announcer
from center.transport.push import Hub


@dataclass
class Center:
    """The running center's parts, as route handlers need them."""

    pool: Pool
    ctx: Context
    views: Views
    hub: Hub
    #: Hands a committed ticket change to the wall, phones and notifiers
    #: (center/transport/fanout.py).
    announce: Announcer
    #: Signs and checks bearer tokens (center/services/auth.py); set in the app's lifespan.
    secret: str = field(default="", repr=False)
    token_ttl_s: float = 12 * 3600
    limiter: RateLimits | None = None
    #: Each person's current token generation: older tokens are revoked (center/services/auth.py).
    tokens: TokenGenerations = field(default_factory=TokenGenerations)
    #: Password hashing off the event loop, bounded (center/services/auth.py).
    hashing: Hashing = field(default_factory=Hashing)
    #: Alert clips (center/services/clips.py); set in the app's lifespan.
    clips: ClipService | None = None

    def role(self, actor_id: str) -> str:
        role = self.ctx.role_of(actor_id)
        if role is None:
            raise HTTPException(403, f"unknown actor {actor_id!r}")
        return role

    def principal(self, token: str | None) -> Principal:
        """The active person a token names; InvalidToken otherwise (also when the token was
        revoked: no query, ``tokens`` is in memory)."""
        return self._active(*read_claims(self.secret, token))

    def signed_principal(self, path: str, query: Iterable[tuple[str, str]]) -> Principal:
        """The active person a signed URL (center/services/auth.py ``sign_url``) was made for,
        if it is this URL's and still current; InvalidToken otherwise (revoked tokens included)."""
        return self._active(*read_signed_url(self.secret, path, query))

    def _active(self, person_id: str, generation: int) -> Principal:
        person = self.ctx.district.people.get(person_id)
        if person is None or not person.active:
            raise InvalidToken(f"person {person_id!r} is not an active person of the district")
        self.tokens.check(person_id, generation)
        return Principal(person, generation)


class RateLimits:
    """Moving-window limits on login attempts and residents' forms, counted in PostgreSQL so
    that every center replica shares one budget per key (center/store/rate_limits.py): behind
    a round-robin balancer, N replicas with limits of their own gave a client N times the
    attempts. The rule strings are the ``limits`` library's (``5/minute``)."""

    #: How often a replica drops the rows of keys that went quiet.
    PRUNE_EVERY_S = 60.0

    def __init__(self, pool: Pool, *, login_person: str, login_ip: str,
                 public_ip: str) -> None:
        self._pool = pool
        self.rules: dict[str, RateLimitItem] = {
            "login_person": parse(login_person), "login_ip": parse(login_ip),
            "public_ip": parse(public_ip)}
        self._pruned_at = time.monotonic()

    async def hit(self, rule: str, key: str, what: str) -> None:
        """Count one attempt; 429 with Retry-After when over the limit."""
        item = self.rules[rule]
        async with self._pool.connection() as conn:
            outcome = await rate_limits.hit(conn, rule, key, amount=item.amount,
                                            window=timedelta(seconds=item.get_expiry()))
            if time.monotonic() - self._pruned_at > self.PRUNE_EVERY_S:
                self._pruned_at = time.monotonic()
                await rate_limits.prune(conn)
        if outcome.allowed:
            return
        retry = max(1, math.ceil(outcome.reset_in_s))
        raise HTTPException(429, f"too many {what}: limit {item}; retry in {retry} s",
                            headers={"Retry-After": str(retry)})


def _center(request: Request) -> Center:
    return request.app.state.center


CenterDep = Annotated[Center, Depends(_center)]


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


#: Declares ``Authorization: Bearer`` in the OpenAPI schema, so /docs has "Authorize" and
#: sends the token; the token itself is read by ``bearer`` (the same for REST and pictures).
_BEARER_SCHEME = HTTPBearer(auto_error=False, scheme_name="bearer",
                            description="access_token from POST /api/v1/auth/login")
BearerDeclared = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)]


def _principal(request: Request, _: BearerDeclared) -> Principal:
    center: Center = request.app.state.center
    try:
        return center.principal(bearer(request.headers.get("authorization")))
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None


def _principal_or_signed(request: Request, _: BearerDeclared) -> Principal:
    """For pictures an ``<img>`` loads and files a link downloads (they cannot send a header):
    a signed URL (``POST /api/v1/auth/signed-urls``) works too. A bearer token in the query
    does not: URLs end up in browser histories and proxy logs."""
    center: Center = request.app.state.center
    token = bearer(request.headers.get("authorization"))
    try:
        if token is not None:
            return center.principal(token)
        if SIG_PARAM in request.query_params:
            return center.signed_principal(request.scope["path"],
                                           request.query_params.multi_items())
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    if "token" in request.query_params:
        raise unauthorized("a token in the URL is not accepted: send Authorization: Bearer,"
                           " or sign the URL with POST /api/v1/auth/signed-urls")
    raise unauthorized("no bearer token or signed URL")


#: The logged-in person (401 with ``WWW-Authenticate: Bearer`` without a valid token).
Actor = Annotated[Principal, Depends(_principal)]
#: The same, or the person a signed URL of this very request was made for.
ImageActor = Annotated[Principal, Depends(_principal_or_signed)]


#: Body fields from before logins that a client may no longer send.
_RETIRED_FIELDS = ("actor_id",)


async def _refuse_retired_fields(request: Request) -> None:
    """422 naming ``actor_id`` when a JSON body or form still sends it. Since logins the acting
    person is the bearer token's; an old client sending it gets told so rather than having it
    ignored (which would hide the bug) or meeting a bare "extra inputs" error. Runs before the
    body's own validation (FastAPI has already read and cached the body)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    sent: Iterable[str] = ()
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return  # not JSON: the route's own validation answers that
        sent = body.keys() if isinstance(body, dict) else ()
    elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        sent = (await request.form()).keys()
    retired = [name for name in _RETIRED_FIELDS if name in sent]
    if retired:
        raise RequestValidationError([{
            "type": "no_longer_accepted", "loc": ("body", name),
            "msg": f"{name} is no longer accepted: the acting person is the bearer token's"
                   " (leave the field out)"} for name in retired])


#: For routes where a person acts (ticket actions, uploads, reports, posts, emergency, zones).
NoActorId = Depends(_refuse_retired_fields)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def public_form(request: Request) -> None:
    """Rate limit for residents' forms (per client address)."""
    center: Center = request.app.state.center
    if center.limiter is not None:
        await center.limiter.hit("public_ip", client_ip(request),
                                 "public submissions from this address")


PublicForm = Depends(public_form)

"""Logging in: a person's id and password for a bearer token; who the token's person is;
changing one's password and logging out everywhere (both revoke every earlier token)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from center.api.deps import Actor, Center, CenterDep, client_ip, unauthorized
from center.services import auth
from center.services.passwords import MIN_PASSWORD
from center.store import ledger, people

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _me(actor: auth.Principal) -> dict[str, Any]:
    p = actor.person
    return {"id": p.id, "name": p.name, "role": p.role, "micro_grid_id": p.micro_grid,
            "grid_id": p.grid, "department_id": p.department}


@router.post("/login", responses={401: {}, 429: {"description": "too many attempts"}})
async def login(center: CenterDep, request: Request, body: Login) -> dict[str, Any]:
    """A bearer token for ``Authorization: Bearer …`` (and the websocket's first message,
    docs/protocol.md). Attempts are limited per person and per client address (429 with
    Retry-After; 503 with Retry-After while too many password checks wait)."""
    await _count_attempt(center, request, body.person_id)
    async with center.pool.connection() as conn:
        hashed, generation = await people.login_record(conn, body.person_id)
    person = center.ctx.district.people.get(body.person_id)
    ok = await center.hashing.verify(body.password, hashed)
    if not ok or person is None or not person.active:
        log.info("login failed person=%s ip=%s", body.person_id[:64], client_ip(request))
        raise unauthorized("wrong person id or password")
    center.tokens.apply(person.id, generation)  # in case this process has not heard yet
    log.info("login person=%s role=%s", person.id, person.role)
    return _token(center, auth.Principal(person, generation))


async def _count_attempt(center: Center, request: Request, person_id: str) -> None:
    """One login attempt against the limits: per person *from this address*, and per address
    in all (docs/security.md "Rate limits"). Keyed by the person alone, five wrong passwords
    sent from anywhere locked the person out of their own phone; keyed by the pair, the
    attacker only locks themselves out, like django-axes' username + IP lockout."""
    if center.limiter is None:
        return
    ip = client_ip(request)
    await center.limiter.hit("login_ip", ip, "login attempts from this address")
    await center.limiter.hit("login_person", f"{person_id}@{ip}",
                             f"login attempts for {person_id} from this address")


def _token(center: Center, principal: auth.Principal) -> dict[str, Any]:
    token, exp = auth.issue_token(center.secret, principal.id, center.token_ttl_s,
                                  generation=principal.generation)
    return {"access_token": token, "token_type": "bearer", "expires_at": exp,
            "expires_in": int(center.token_ttl_s), "person": _me(principal)}


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=1024)


@router.post("/password", responses={401: {}, 403: {"description": "wrong current password"},
                                     409: {"description": "changed meanwhile"},
                                     429: {"description": "too many attempts"}})
async def change_password(center: CenterDep, actor: Actor, request: Request,
                          body: PasswordChange) -> dict[str, Any]:
    """Change your own password. Every token issued to you so far, the one sent here included,
    stops working and their websockets close (a stolen token dies with the old password); the
    answer is a new token, as from ``/login``. Attempts count against the login limit."""
    await _count_attempt(center, request, actor.id)
    async with center.pool.connection() as conn:
        hashed, _ = await people.login_record(conn, actor.id)
    if not await center.hashing.verify(body.current_password, hashed):
        log.info("password change refused (wrong current password) person=%s", actor.id)
        raise HTTPException(403, "current_password is wrong")
    new_hash = await center.hashing.hash(body.new_password)
    async with center.pool.connection() as conn, conn.transaction():
        if not await people.replace_password_hash(conn, actor.id, new_hash, hashed):
            raise HTTPException(409, "the password was changed meanwhile; log in again")
        generation = await people.token_generation(conn, actor.id)  # bumped by the trigger
        await ledger.record(conn, at=center.ctx.clock.now(), actor_id=actor.id,
                            action="password_changed", scope=actor.id)
    center.tokens.apply(actor.id, generation)
    log.info("password changed person=%s", actor.id)
    return _token(center, auth.Principal(actor.person, generation))


class LogoutAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Someone else (admins only: a lost phone); left out, yourself.
    person_id: str | None = Field(default=None, min_length=1, max_length=64)


@router.post("/logout-all", responses={401: {}, 403: {}, 404: {}})
async def logout_all(center: CenterDep, actor: Actor, body: LogoutAll | None = None
                     ) -> dict[str, Any]:
    """Log out everywhere: every token issued so far to you (or, for an admin, to
    ``person_id``), the one sent here included, stops working and their websockets close.
    The password stays; logging in again works at once."""
    person_id = body.person_id if body is not None and body.person_id else actor.id
    if person_id != actor.id:
        auth.require(actor, ("admin",), "logging someone else out")
        if person_id not in center.ctx.district.people:
            raise HTTPException(404, f"no person {person_id!r} in the district")
    async with center.pool.connection() as conn, conn.transaction():
        generation = await people.revoke_tokens(conn, person_id)
        await ledger.record(conn, at=center.ctx.clock.now(), actor_id=actor.id,
                            action="logout_all", scope=person_id)
    center.tokens.apply(person_id, generation)
    log.info("logged out everywhere person=%s by=%s", person_id, actor.id)
    return {"person_id": person_id, "revoked": True}


@router.get("/me", responses={401: {}})
async def me(actor: Actor) -> dict[str, Any]:
    return _me(actor)


class SignUrls(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Paths under /api/v1/ with their query, as the page would put them in ``src``/``href``.
    urls: list[Annotated[str, Field(min_length=1, max_length=2048)]] = Field(
        min_length=1, max_length=200)


@router.post("/signed-urls", responses={401: {}, 422: {}})
async def signed_urls(center: CenterDep, actor: Actor, body: SignUrls) -> dict[str, Any]:
    """The same URLs signed for you, for ``<img src>`` and download links (which cannot send
    ``Authorization``): each opens only its own path and query, for a few minutes
    (``expires_at``), and stops working with your tokens. The route still checks what you may
    see. docs/security.md "Tokens and URLs"."""
    try:
        signed = [auth.sign_url(center.secret, url, actor.id, actor.generation)
                  for url in body.urls]
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"urls": [url for url, _ in signed], "expires_at": min(exp for _, exp in signed)}

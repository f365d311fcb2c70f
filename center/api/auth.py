"""Logging in: a person's id and password for a bearer token; who the token's person is;
changing one's password and logging out everywhere (both revoke every earlier token)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from center import auth
from center.api.deps import Actor, Center, CenterDep, client_ip, unauthorized
from center.passwords import MIN_PASSWORD

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
    """A bearer token for ``Authorization: Bearer …`` (and ``/ws?token=…``). Attempts are
    limited per person and per client address (429 with Retry-After)."""
    if center.limiter is not None:
        center.limiter.hit("login_ip", client_ip(request), "login attempts from this address")
        center.limiter.hit("login_person", body.person_id, f"login attempts for {body.person_id}")
    async with center.pool.connection() as conn:
        hashed, generation = await auth.login_record(conn, body.person_id)
    person = center.ctx.district.people.get(body.person_id)
    ok = auth.verify_password(body.password, hashed)
    if not ok or person is None or not person.active:
        log.info("login failed person=%s ip=%s", body.person_id[:64], client_ip(request))
        raise unauthorized("wrong person id or password")
    center.tokens.apply(person.id, generation)  # in case this process has not heard yet
    log.info("login person=%s role=%s", person.id, person.role)
    return _token(center, auth.Principal(person, generation))


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
async def change_password(center: CenterDep, actor: Actor, body: PasswordChange
                          ) -> dict[str, Any]:
    """Change your own password. Every token issued to you so far, the one sent here included,
    stops working and their websockets close (a stolen token dies with the old password); the
    answer is a new token, as from ``/login``. Attempts count against the login limit."""
    if center.limiter is not None:
        center.limiter.hit("login_person", actor.id, f"login attempts for {actor.id}")
    async with center.pool.connection() as conn:
        hashed, _ = await auth.login_record(conn, actor.id)
    if not await asyncio.to_thread(auth.verify_password, body.current_password, hashed):
        log.info("password change refused (wrong current password) person=%s", actor.id)
        raise HTTPException(403, "current_password is wrong")
    new_hash = await asyncio.to_thread(auth.hash_password, body.new_password)
    async with center.pool.connection() as conn, conn.transaction():
        # Only over the hash just checked: a change made meanwhile is not overwritten.
        cur = await conn.execute(
            "UPDATE district_people SET password_hash = %s WHERE id = %s AND password_hash = %s",
            (new_hash, actor.id, hashed))
        if cur.rowcount != 1:
            raise HTTPException(409, "the password was changed meanwhile; log in again")
        generation = await auth.token_generation(conn, actor.id)  # bumped by the trigger
        await _ledger(conn, center, actor.id, "password_changed", actor.id)
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
        generation = await auth.revoke_tokens(conn, person_id)
        await _ledger(conn, center, actor.id, "logout_all", person_id)
    center.tokens.apply(person_id, generation)
    log.info("logged out everywhere person=%s by=%s", person_id, actor.id)
    return {"person_id": person_id, "revoked": True}


async def _ledger(conn: AsyncConnection, center: Center, actor_id: str, action: str,
                  scope: str) -> None:
    await conn.execute("INSERT INTO ops_ledger (at, actor_id, action, scope) VALUES"
                       " (%s, %s, %s, %s)", (center.ctx.clock.now(), actor_id, action, scope))


@router.get("/me", responses={401: {}})
async def me(actor: Actor) -> dict[str, Any]:
    return _me(actor)

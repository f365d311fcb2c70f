"""Logging in: a person's id and password for a bearer token; who the token's person is."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from center import auth
from center.api.deps import Actor, CenterDep, client_ip, unauthorized

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
        hashed = await auth.password_hash(conn, body.person_id)
    person = center.ctx.district.people.get(body.person_id)
    ok = auth.verify_password(body.password, hashed)
    if not ok or person is None or not person.active:
        log.info("login failed person=%s ip=%s", body.person_id[:64], client_ip(request))
        raise unauthorized("wrong person id or password")
    token, exp = auth.issue_token(center.secret, person.id, center.token_ttl_s)
    log.info("login person=%s role=%s", person.id, person.role)
    return {"access_token": token, "token_type": "bearer", "expires_at": exp,
            "expires_in": int(center.token_ttl_s), "person": _me(auth.Principal(person))}


@router.get("/me", responses={401: {}})
async def me(actor: Actor) -> dict[str, Any]:
    return _me(actor)

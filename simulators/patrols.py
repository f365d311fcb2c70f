"""Patrol bots: on-duty workers whose phones share their position while they walk their
micro-grid (docs/presence.md), so the demo's wall shows workers moving and their tracks.

Each bot logs in like the phone page, checks in (``POST /api/v1/presence/duty``), then every
``every_s`` seconds moves on a gentle random walk at walking pace (about 1.3 m/s) that stays
within ``radius_m`` of its micro-grid's middle and sends the position
(``POST /api/v1/presence/positions``); it checks out when stopped. Repeatable given ``seed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from typing import Any

import httpx

from simulators.workers import Passwords

log = logging.getLogger(__name__)

WALK_MPS = 1.3
M_PER_DEG_LAT = 111_320.0


def middle(geometry: dict[str, Any]) -> tuple[float, float]:
    """The mean of a (multi)polygon's outer ring points: a point well inside a town block."""
    coords = geometry["coordinates"]
    ring = coords[0][0] if geometry["type"] == "MultiPolygon" else coords[0]
    return (sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))


class Walk:
    """A random walk around ``home`` (lon, lat) that turns back past ``radius_m``."""

    def __init__(self, home: tuple[float, float], radius_m: float, rng: random.Random) -> None:
        self.home, self.radius_m, self.rng = home, radius_m, rng
        self.x = self.y = 0.0  # metres east and north of home
        self.heading = rng.uniform(0, 2 * math.pi)

    def step(self, seconds: float) -> tuple[float, float]:
        self.heading += self.rng.gauss(0, 0.5)
        if math.hypot(self.x, self.y) > self.radius_m:  # head home
            self.heading = math.atan2(-self.y, -self.x) + self.rng.gauss(0, 0.3)
        d = WALK_MPS * seconds
        self.x += d * math.cos(self.heading)
        self.y += d * math.sin(self.heading)
        lat = self.home[1] + self.y / M_PER_DEG_LAT
        lon = self.home[0] + self.x / (M_PER_DEG_LAT * math.cos(math.radians(self.home[1])))
        return lon, lat


async def _login(http: httpx.AsyncClient, person: str, password: str) -> dict[str, str]:
    """Log in, waiting out the login rate limit (the demo's worker bots log in too)."""
    for _ in range(20):
        r = await http.post("/api/v1/auth/login",
                            json={"person_id": person, "password": password})
        if r.status_code != 429:
            break
        await asyncio.sleep(float(r.headers.get("retry-after", "2")))
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _patrol(http: httpx.AsyncClient, person: str, auth: dict[str, str],
                  home: tuple[float, float], *, every_s: float, radius_m: float,
                  rng: random.Random, stop: asyncio.Event, sent: dict[str, int]) -> None:
    walk = Walk(home, radius_m, rng)
    (await http.post("/api/v1/presence/duty", json={"on_duty": True},
                     headers=auth)).raise_for_status()
    try:
        while not stop.is_set():
            lon, lat = walk.step(every_s)
            r = await http.post("/api/v1/presence/positions", headers=auth, json={
                "lon": lon, "lat": lat, "accuracy_m": round(rng.uniform(4, 15), 1)})
            if r.status_code == 201:  # stored (200: thinned)
                sent[person] = sent.get(person, 0) + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await http.post("/api/v1/presence/duty", json={"on_duty": False}, headers=auth)


async def run_patrols(base_url: str, workers: list[str], passwords: Passwords, *,
                      every_s: float = 5.0, radius_m: float = 250.0, duration: float = 0.0,
                      seed: int = 1, stop: asyncio.Event | None = None) -> dict[str, int]:
    """Walk ``workers`` for ``duration`` seconds (0: until ``stop``); the positions the center
    stored of each."""
    stop = stop or asyncio.Event()
    sent: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        tasks: list[asyncio.Task[None]] = []
        for i, person in enumerate(workers):
            password = passwords(person)
            if password is None:
                log.error("patrol bot %s: no password", person)
                continue
            auth = await _login(http, person, password)
            if not tasks:  # the district's micro-grids, read once
                areas = (await http.get("/api/v1/district", headers=auth)).json()["areas"]
                mine = {w["id"]: w["micro_grid_id"]
                        for w in (await http.get("/api/v1/workers", headers=auth)).json()}
                homes = {f["properties"]["id"]: middle(f["geometry"])
                         for f in areas["features"]}
            home = homes.get(mine.get(person) or "")
            if home is None:
                log.error("patrol bot %s: no micro-grid to walk", person)
                continue
            tasks.append(asyncio.create_task(_patrol(
                http, person, auth, home, every_s=every_s, radius_m=radius_m,
                rng=random.Random(seed * 1000 + i), stop=stop, sent=sent)))
        try:
            if duration:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)
            else:
                await stop.wait()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    return sent

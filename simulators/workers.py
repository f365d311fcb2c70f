"""Worker bots: micro-grid workers and their leaders, played against a running center.

Each bot logs in (``POST /api/v1/auth/login``; passwords from a ``gridwatch center
gen-passwords`` file, or ``provision_passwords`` for drills and the demo) and then, per worker,
connects like the phone page (websocket ``/ws``, its token as the first message, plus the same
``GET /api/v1/tickets?open=true&assignee_id=…`` reload, every few seconds and after every
reconnect) and works each ticket dispatched to it through the REST API
(``POST /api/v1/tickets/{id}/actions`` with its ``actor_id``): ``accept`` after
``accept_after`` seconds, ``arrive``, then upload a photo (``POST …/attachments``) and
``resolve`` with it, ``handle_after`` seconds after accepting. Delays are jittered (×0.5-1.5)
like people are. A ``late`` share of tickets is accepted only after ``late_after`` seconds (so
the accept deadline passes and the case escalates); a ``return_share`` is sent back instead.

A leader bot per micro-grid watches handled tickets and checks them ``verify_after`` seconds
later: a ``fail_verify`` share gets ``rework`` (the worker gets it again), the rest ``verify``
(unless the camera verified first). Every choice for a ticket comes from ``seed`` and the
ticket id, so a run is repeatable given the same tickets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from center.transport.push import auth_message
from simulators.alerts import synthetic_jpeg

log = logging.getLogger(__name__)


@dataclass
class BotSettings:
    accept_after: float = 5.0
    handle_after: float = 20.0
    late: float = 0.0
    late_after: float = 60.0
    fail_verify: float = 0.0
    verify_after: float = 10.0
    return_share: float = 0.0
    resync_s: float = 3.0
    seed: int = 1


@dataclass
class BotReport:
    actions: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    errors: int = 0
    late_tickets: list[int] = field(default_factory=list)
    reworked_tickets: list[int] = field(default_factory=list)
    uploads: int = 0

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Passwords = Callable[[str], str | None]


class PasswordBook:
    """Bots' passwords: a dict (person id -> password) or a function of the person id."""

    def __init__(self, source: dict[str, str] | Passwords) -> None:
        self._source = source

    def __call__(self, person_id: str) -> str | None:
        if isinstance(self._source, dict):
            return self._source.get(person_id)
        return self._source(person_id)

    def known(self) -> list[str]:
        return sorted(self._source) if isinstance(self._source, dict) else []


def read_passwords(path: Path) -> dict[str, str]:
    """A ``gridwatch center gen-passwords`` file: ``person_id<TAB>role<TAB>password`` lines."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[0]] = parts[-1]
    return out


def provision_passwords(dsn: str, person_ids: Iterable[str], out: Path | None = None
                        ) -> dict[str, str]:
    """Give these people new random passwords (stored hashed, as ``gen-passwords`` does) and
    return them; with ``out``, also write them there in the ``gen-passwords`` format (0600).
    For bots in drills and the demo, whose people need logins nobody else uses."""
    import psycopg

    from center.services.auth import hash_password
    from center.services.passwords import new_password, write_private

    chosen = {p: new_password() for p in person_ids}
    with psycopg.connect(dsn) as conn, conn.transaction():
        for person_id, password in chosen.items():
            conn.execute("UPDATE district_people SET password_hash = %s WHERE id = %s",
                         (hash_password(password), person_id))
    if out is not None:
        write_private(out, "".join(f"{p}\tbot\t{pw}\n" for p, pw in chosen.items()))
    return chosen


class LoginFailed(RuntimeError):
    pass


class Bots:
    """Worker and leader bots against the center at ``base_url`` (``http://host:port``);
    ``passwords(person_id)`` gives each bot's login password."""

    def __init__(self, base_url: str, workers: list[str], leaders: list[str] | None = None,
                 settings: BotSettings | None = None, photo: bytes | None = None,
                 passwords: Passwords | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.passwords: Passwords = passwords or PasswordBook({})
        self._tokens: dict[str, str] = {}
        self.workers = workers
        self.leaders = leaders or []
        self.s = settings or BotSettings()
        self.photo = photo or synthetic_jpeg("handled")
        self.report = BotReport()
        self._busy: set[int] = set()  # tickets a bot is working on right now
        self._checking: set[int] = set()
        # The per-ticket tasks: the event loop keeps only weak references to tasks, so one
        # nobody holds could be garbage-collected before it finishes.
        self._jobs: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._leader_of: dict[str, str] = {}  # micro-grid -> leader id

    @classmethod
    async def discover(cls, base_url: str, workers: str, *, passwords: Passwords,
                       **kw: Any) -> Bots:
        """``workers``: ``all`` (everyone ``passwords`` has a password for) or a comma list of
        ids; leaders are the micro-grid leaders of the chosen workers' micro-grids. The people
        list is read with the first worker's login."""
        chosen_ids = None if workers == "all" else [
            w.strip() for w in workers.split(",") if w.strip()]
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            probe = cls(base_url, [], passwords=passwords)
            probe._http = http
            first = chosen_ids[0] if chosen_ids else None
            if first is None:  # 'all': anyone we can log in as
                people_ids = list(getattr(passwords, "known", list)())
                first = people_ids[0] if people_ids else None
            if first is None:
                raise ValueError("no password for any worker: give --passwords")
            r = await http.get("/api/v1/people", headers=await probe._auth(first))
            people = r.raise_for_status().json()
        by_id = {p["id"]: p for p in people}
        if chosen_ids is None:
            chosen = [p["id"] for p in people
                      if p["role"] == "worker" and passwords(p["id"]) is not None]
        else:
            chosen = chosen_ids
            unknown = [w for w in chosen if by_id.get(w, {}).get("role") != "worker"]
            if unknown:
                raise ValueError(f"not workers of this district: {', '.join(unknown)}")
        grids = {by_id[w].get("micro_grid") for w in chosen}
        leaders = [p["id"] for p in people
                   if p["role"] == "micro_grid_leader" and p.get("micro_grid") in grids
                   and passwords(p["id"]) is not None]
        bots = cls(base_url, chosen, leaders, passwords=passwords, **kw)
        bots._tokens = probe._tokens
        bots._leader_of = {by_id[x]["micro_grid"]: x for x in leaders}
        return bots

    async def _auth(self, person: str) -> dict[str, str]:
        """Authorization header for ``person``, logging in once (waiting out 429s)."""
        if person not in self._tokens:
            assert self._http is not None
            password = self.passwords(person)
            if password is None:
                raise LoginFailed(f"no password for {person}")
            for _ in range(20):
                r = await self._http.post("/api/v1/auth/login",
                                          json={"person_id": person, "password": password})
                if r.status_code != 429:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "2")))
            if r.status_code != 200:
                raise LoginFailed(f"login {person}: HTTP {r.status_code} {r.text[:200]}")
            self._tokens[person] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[person]}"}

    # --- helpers ----------------------------------------------------------------------------

    def _rng(self, ticket_id: int) -> random.Random:
        return random.Random(f"{self.s.seed}:{ticket_id}")

    async def _sleep(self, seconds: float, rng: random.Random) -> bool:
        """A human-ish wait; False when the bots are stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds * rng.uniform(0.5, 1.5))
        return not self._stop.is_set()

    async def _act(self, ticket_id: int, actor: str, action: str, **extra: Any) -> bool:
        assert self._http is not None
        try:
            r = await self._http.post(f"/api/v1/tickets/{ticket_id}/actions",
                                      json={"action": action, **extra},
                                      headers=await self._auth(actor))
        except (httpx.HTTPError, LoginFailed) as exc:
            self.report.errors += 1
            log.warning("bot %s %s ticket=%s failed: %s", actor, action, ticket_id, exc)
            return False
        if r.status_code in (403, 404, 409):  # someone else moved it: fine, like the page
            self.report.conflicts += 1
            return False
        if r.status_code != 200:
            self.report.errors += 1
            log.warning("bot %s %s ticket=%s: HTTP %s %s", actor, action, ticket_id,
                        r.status_code, r.text[:200])
            return False
        self.report.count(action)
        log.debug("bot %s %s ticket=%s", actor, action, ticket_id)
        return True

    async def _upload(self, ticket_id: int, actor: str) -> int | None:
        assert self._http is not None
        try:
            r = await self._http.post(f"/api/v1/tickets/{ticket_id}/attachments",
                                      files={"photo": ("handled.jpg", self.photo, "image/jpeg")},
                                      headers=await self._auth(actor))
        except (httpx.HTTPError, LoginFailed):
            self.report.errors += 1
            return None
        if r.status_code != 201:
            self.report.errors += 1
            return None
        self.report.uploads += 1
        return int(r.json()["id"])

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    # --- workers ----------------------------------------------------------------------------

    def _offer(self, worker: str, ticket: dict[str, Any]) -> None:
        tid = ticket["id"]
        if (ticket.get("assignee_id") == worker and ticket.get("state") in
                ("dispatched", "accepted", "handling") and tid not in self._busy):
            self._busy.add(tid)
            self._spawn(self._work(worker, tid, ticket["state"]))

    async def _work(self, worker: str, tid: int, state: str) -> None:
        rng = self._rng(tid)
        try:
            if state == "dispatched":
                if rng.random() < self.s.return_share:
                    if await self._sleep(self.s.accept_after, rng):
                        await self._act(tid, worker, "return", note="not my micro-grid (bot)")
                    return
                late = rng.random() < self.s.late
                if late and tid not in self.report.late_tickets:
                    self.report.late_tickets.append(tid)
                wait = self.s.late_after if late else self.s.accept_after
                if not await self._sleep(wait, rng) or not await self._act(tid, worker,
                                                                           "accept"):
                    return
                state = "accepted"
            if state == "accepted":
                if not await self._sleep(self.s.handle_after / 2, rng):
                    return
                if not await self._act(tid, worker, "arrive"):
                    return
            if not await self._sleep(self.s.handle_after / 2, rng):
                return
            photo = await self._upload(tid, worker)
            await self._act(tid, worker, "resolve", note="cleared on site (bot)",
                            attachment_ids=[photo] if photo else [])
        finally:
            self._busy.discard(tid)

    async def _resync(self, worker: str) -> None:
        assert self._http is not None
        with contextlib.suppress(httpx.HTTPError, ValueError, LoginFailed):
            r = await self._http.get("/api/v1/tickets",
                                     params={"open": "true", "assignee_id": worker,
                                             "limit": 1000}, headers=await self._auth(worker))
            if r.status_code == 200:
                for t in r.json():
                    self._offer(worker, t)

    async def _worker(self, worker: str) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                token = (await self._auth(worker))["Authorization"].removeprefix("Bearer ")
                url = self.base.replace("http", "ws", 1) + "/ws"
                async with websockets.connect(url, open_timeout=5) as ws:
                    await ws.send(auth_message(token))
                    backoff = 0.5
                    await self._resync(worker)
                    next_sync = time.monotonic() + self.s.resync_s
                    while not self._stop.is_set():
                        try:
                            text = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            text = None
                        if text is not None:
                            msg = json.loads(text)
                            if msg.get("type") == "ticket":
                                self._offer(worker, msg["data"])
                        if time.monotonic() >= next_sync:
                            next_sync = time.monotonic() + self.s.resync_s
                            await self._resync(worker)
            except LoginFailed as exc:
                log.error("bot %s cannot log in: %s", worker, exc)
                self.report.errors += 1
                return
            except (OSError, websockets.WebSocketException, TimeoutError, httpx.HTTPError):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    # --- leaders ----------------------------------------------------------------------------

    async def _check(self, ticket: dict[str, Any]) -> None:
        tid = ticket["id"]
        leader = self._leader_of.get(ticket.get("micro_grid_id") or "")
        if leader is None or tid in self._checking:
            return
        self._checking.add(tid)
        rng = self._rng(tid * 7919 + ticket.get("rework_count", 0))
        try:
            if not await self._sleep(self.s.verify_after, rng):
                return
            if rng.random() < self.s.fail_verify:
                if await self._act(tid, leader, "rework", note="still there (leader bot)"):
                    self.report.reworked_tickets.append(tid)
            else:
                await self._act(tid, leader, "verify", note="checked on site (leader bot)")
        finally:
            self._checking.discard(tid)

    async def _leaders(self) -> None:
        """Each leader polls the handled tickets it may see (its micro-grid's)."""
        assert self._http is not None
        while not self._stop.is_set():
            for leader in self.leaders:
                with contextlib.suppress(httpx.HTTPError, ValueError, LoginFailed):
                    r = await self._http.get("/api/v1/tickets",
                                             params={"state": "handled", "limit": 1000},
                                             headers=await self._auth(leader))
                    if r.status_code == 200:
                        for t in r.json():
                            if t["id"] not in self._checking:
                                self._spawn(self._check(t))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    # --- running ----------------------------------------------------------------------------

    async def run(self, duration: float = 0.0) -> BotReport:
        """Run every bot for ``duration`` seconds (0: until ``stop()``)."""
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            self._http = http
            tasks = [asyncio.create_task(self._worker(w)) for w in self.workers]
            if self.leaders and (self.s.verify_after > 0):
                tasks.append(asyncio.create_task(self._leaders()))
            try:
                if duration:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), duration)
                else:
                    await self._stop.wait()
            finally:
                self._stop.set()
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
                # let ticket tasks see the stop and finish their current request
                await asyncio.sleep(0.2)
        return self.report

    def stop(self) -> None:
        self._stop.set()

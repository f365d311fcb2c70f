"""Model rollouts: a candidate detector model goes to a canary set of edges, then to every edge
(promote) or back to what each edge ran before (rollback). docs/model-rollout.md.

The database is the source of truth: ``model_assignments`` holds what each edge must run, and
the center publishes it, retained, on ``gridwatch/v1/model/{edge_id}`` (``publish_assignments``,
run by ingest on its connection). The CLI only writes rows: on a broker with accounts the
center's account has one connection (docs/security.md), so a second process must not publish
as the center. Edges answer in their config state (``wire.protocol.ModelState``), which
ingest hands to ``record_report``: the switch time confirms the edge, a refusal is stored with
its reason.

An edge takes part only once it has reported the model it runs with its weights' SHA-256 and an
absolute weights path (or none: the registry's), so that a rollback can name that model again.
An edge whose config maps classes of its own (``detector.class_map``) is left out: an
assignment carries no class map, so its model needs a registry entry first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt

from center.store import rollouts
from center.store.db import Connection, DatabaseError, Pool
from center.store.rollouts import Rollout, RolloutEdge
from wire.protocol import ModelAssignment, ModelState, model_assignment_topic

log = logging.getLogger(__name__)

#: How often the center looks for assignments to publish (one indexed query).
ASSIGNMENT_POLL_S = 1.0


class RolloutError(ValueError):
    """A rollout step that cannot be done as asked, phrased for the engineer."""


def center_sha256(model: str, path: str | None, given: str | None) -> str:
    """The digest the edges must check: of the weights file when the center can see it (the
    registry's, or ``path``), else ``given``; both must agree when both exist."""
    from wire.models import weights_path, weights_sha256

    try:
        file = weights_path(model, path)
    except (KeyError, FileNotFoundError) as exc:
        raise RolloutError(str(exc.args[0])) from None
    seen = weights_sha256(file) if file.exists() else None
    if given is not None:
        given = given.lower()
        if seen is not None and seen != given:
            raise RolloutError(f"{file} has SHA-256 {seen} here, --sha256 says {given}")
        return given
    if seen is None:
        raise RolloutError(f"the center cannot see {file}: give the weights' SHA-256 with "
                           f"--sha256 (sha256sum on the file the edges get)")
    return seen


def _previous(edge_id: str, reported: tuple[dict[str, Any], Any] | None) -> dict[str, Any]:
    """What ``edge_id`` runs now, as a rollback would assign it; raises why it cannot take part."""
    if reported is None:
        raise RolloutError(f"edge {edge_id} has not reported its config")
    config, model = reported
    if model is None:
        raise RolloutError(f"edge {edge_id} has not reported the model it runs (an edge "
                           f"older than model rollouts, or one with accept_pushed_config off)")
    state = ModelState.model_validate(model)
    detector = config.get("detector") or {}
    path = detector.get("path")
    if state.sha256 is None:
        raise RolloutError(f"edge {edge_id} could not hash its weights ({state.model}); a "
                           f"rollback could not name them")
    if path is not None and not str(path).startswith(("/", "~")):
        raise RolloutError(f"edge {edge_id} runs weights at a relative path ({path}); give "
                           f"detector.path as an absolute path so a rollback can name it")
    if detector.get("class_map") is not None:
        raise RolloutError(f"edge {edge_id} maps its model's classes in its config "
                           f"(detector.class_map); give that model a registry entry first")
    return {"model": state.model, "path": path, "sha256": state.sha256}


async def _add_edge(conn: Connection, rollout: Rollout, edge_id: str,
                    previous: dict[str, Any], canary: bool, now: datetime) -> None:
    await rollouts.add_edge(conn, rollout.id, edge_id, previous, canary, now)
    await rollouts.assign(conn, ModelAssignment(edge_id=edge_id, rollout_id=rollout.id,
                                        model=rollout.model, path=rollout.path,
                                        sha256=rollout.sha256, at=now))


async def start(conn: Connection, model: str, path: str | None, sha256: str,
                edges: Sequence[str], now: datetime) -> int:
    """A new rollout of ``model`` to the canary ``edges``; returns its id."""
    edges = list(dict.fromkeys(edges))
    if not edges:
        raise RolloutError("name at least one canary edge (--edge)")
    reported = await rollouts.reported_models(conn)
    previous = {e: _previous(e, reported.get(e)) for e in edges}
    if busy := await rollouts.in_canary(conn, edges):
        raise RolloutError("; ".join(f"edge {e} is a canary of rollout {r} (promote or roll "
                                     f"it back first)" for e, r in sorted(busy.items())))
    async with conn.transaction():
        rollout = await get(conn, await rollouts.insert(conn, model, path, sha256, now))
        for edge_id in edges:
            await _add_edge(conn, rollout, edge_id, previous[edge_id], True, now)
    return rollout.id


async def get(conn: Connection, rollout_id: int) -> Rollout:
    rollout = await rollouts.get(conn, rollout_id)
    if rollout is None:
        raise RolloutError(f"no rollout {rollout_id}")
    return rollout


async def latest(conn: Connection, limit: int = 20) -> list[Rollout]:
    return await rollouts.latest(conn, limit)


async def edges(conn: Connection, rollout_id: int) -> list[RolloutEdge]:
    return await rollouts.edges(conn, rollout_id)


async def canary_groups(conn: Connection, rollout_id: int
                        ) -> list[tuple[datetime, list[str]]]:
    """Each canary edge's switch time (its confirmation) and the cameras it runs, for
    ``center.services.canary.decide_groups``; raises while an edge has not confirmed."""
    rollout = await get(conn, rollout_id)
    rows = [e for e in await edges(conn, rollout_id) if e.canary]
    waiting = [e.edge_id + (f" (refused: {e.refusal})" if e.refusal else "")
               for e in rows if e.confirmed_at is None]
    if waiting:
        raise RolloutError(f"rollout {rollout.id}: not confirmed by {', '.join(waiting)}")
    reported = await rollouts.reported_models(conn)
    groups = []
    for e in rows:
        config = reported.get(e.edge_id, ({}, None))[0]
        cameras = [c["id"] for c in config.get("cameras") or []]
        assert e.confirmed_at is not None
        groups.append((e.confirmed_at, cameras))
    return groups


async def promote(conn: Connection, rollout_id: int, now: datetime, *,
                  check: str, forced: bool) -> tuple[list[str], dict[str, str]]:
    """Assign the rollout's model to every other edge that reported its model; ``check`` is
    the canary check's verdict, ``forced`` that it said hold. Returns the edges assigned and
    the ones left out, with why."""
    async with conn.transaction():
        rollout = await get(conn, rollout_id)
        if rollout.state != "canary":
            raise RolloutError(f"rollout {rollout.id} is {rollout.state}, not canary")
        done = {e.edge_id for e in await edges(conn, rollout.id)}
        reported = await rollouts.reported_models(conn)
        others = [e for e in reported if e not in done]
        busy = await rollouts.in_canary(conn, others, but=rollout.id)
        assigned, left_out = [], {}
        for edge_id in others:
            if edge_id in busy:
                left_out[edge_id] = f"a canary of rollout {busy[edge_id]}"
                continue
            try:
                previous = _previous(edge_id, reported[edge_id])
            except RolloutError as exc:
                left_out[edge_id] = str(exc)
                continue
            await _add_edge(conn, rollout, edge_id, previous, False, now)
            assigned.append(edge_id)
        await rollouts.mark_promoted(conn, rollout.id, now, check=check, forced=forced)
    return assigned, left_out


async def rollback(conn: Connection, rollout_id: int, now: datetime
                   ) -> tuple[list[str], dict[str, str]]:
    """Assign every edge of the rollout the model it ran before, unless a later rollout has
    assigned it since. Returns the edges assigned and the ones left alone, with why."""
    async with conn.transaction():
        rollout = await get(conn, rollout_id)
        if rollout.state == "rolled_back":
            raise RolloutError(f"rollout {rollout.id} is rolled back already")
        current = {edge_id: ModelAssignment.model_validate(payload)
                   for edge_id, payload in (await rollouts.assignments(conn)).items()}
        assigned, left_alone = [], {}
        for e in await edges(conn, rollout.id):
            now_assigned = current.get(e.edge_id)
            if now_assigned is None or now_assigned.rollout_id != rollout.id:
                left_alone[e.edge_id] = (f"rollout {now_assigned.rollout_id} assigned it since"
                                         if now_assigned else "no assignment")
                continue
            await rollouts.assign(conn, ModelAssignment(
                edge_id=e.edge_id, rollout_id=rollout.id, rollback=True, at=now,
                model=e.previous["model"], path=e.previous.get("path"),
                sha256=e.previous["sha256"]))
            assigned.append(e.edge_id)
        await rollouts.mark_rolled_back(conn, rollout.id, now)
    return assigned, left_alone


async def record_report(conn: Connection, edge_id: str, state: ModelState) -> None:
    """An edge's model report (its config state): the switch confirms it in its rollout (the
    rollout's digest, once), a rollback's switch marks it restored, a refusal is kept."""
    if state.rollout_id is not None and state.rollback:
        await rollouts.mark_restored(conn, state.rollout_id, edge_id, state.since)
    elif state.rollout_id is not None:
        await rollouts.mark_confirmed(conn, state.rollout_id, edge_id, state.since,
                                      state.sha256)
    if state.refused is not None:
        await rollouts.mark_refused(conn, state.refused.rollout_id, edge_id, state.refused.at,
                                    state.refused.reason)


Publish = Callable[..., Awaitable[None]]


async def publish_assignments(pool: Pool, publish: Publish, *,
                              every_s: float = ASSIGNMENT_POLL_S) -> None:
    """Publish (retained) every assignment on start, then each new one within ``every_s``;
    ends when the broker connection is gone (ingest starts it again on the next one, which
    publishes everything again). A database error or a bug skips a round, logged."""
    everything = True
    while True:
        try:
            async with pool.connection() as conn:
                rows = await rollouts.to_publish(conn, everything)
            for edge_id, payload, updated_at in rows:
                message = ModelAssignment.model_validate(payload).model_dump_json()
                await publish(model_assignment_topic(edge_id), message, retain=True)
                async with pool.connection() as conn:
                    await rollouts.mark_published(conn, edge_id, updated_at)
                log.info("edge=%s model assignment published (rollout %s)", edge_id,
                         payload.get("rollout_id"))
            everything = False
        except aiomqtt.MqttError as exc:
            log.warning("model assignments wait for the broker: %s", exc)
            return
        except DatabaseError as exc:
            log.warning("model assignments not published this round: %s", exc)
        except Exception:  # never silent, never the end of ingest
            log.exception("model assignments not published this round")
        await asyncio.sleep(every_s)


def describe_previous(previous: dict[str, Any]) -> str:
    path = f" {Path(previous['path'])}" if previous.get("path") else ""
    return f"{previous['model']}{path} ({previous['sha256'][:12]})"

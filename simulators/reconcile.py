"""Reconcile what a simulator sent with what the center stored, and check the ticket books.

``reconcile_alerts``: every valid ``(alert_id, seq)`` the broker acknowledged is in ``alerts``
exactly once, nothing else is, and every malformed payload is in ``dead_letters``.
``check_tickets``: every ticket is in a known state with a matching ``is_open``; its ledger is a
chain of legal transitions (``center.domain.ticket_states.TRANSITIONS``) ending in its state;
at most one open ticket per place; every open ticket waiting on a stage (dispatched, accepted,
handling) has a pending deadline or escalation timer, or its escalation has run its course.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from center.domain.ticket_states import OPEN, STATES, TRANSITIONS
from simulators.alerts import StormReport

#: Ledger actions outside the table: registration, and a camera reporting a place clear before
#: the case was handled (recorded, no state change).
_LEDGER_ONLY = {"register", "camera_clear"}
_STAGE_TIMER = {"dispatched": "accept", "accepted": "handle", "handling": "handle"}


@dataclass
class AlertCheck:
    sent_valid: int
    stored: int
    missing: int
    stored_twice: int
    unexpected: int
    malformed_sent: int
    dead_lettered: int
    malformed_missing: int
    missing_sample: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stored_twice or self.unexpected
                    or self.malformed_missing)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class TicketCheck:
    tickets: int
    by_state: dict[str, int]
    bad_state: int
    bad_ledger: int
    places_with_two_open: int
    waiting_without_timer: int
    escalations: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.bad_state or self.bad_ledger or self.places_with_two_open
                    or self.waiting_without_timer)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def stored_keys(dsn: str) -> dict[tuple[str, int], int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT alert_id::text, seq, count(*) FROM alerts GROUP BY 1, 2").fetchall()
    return {(a, s): n for a, s, n in rows}


def wait_drained(dsn: str, expected_alerts: int, expected_dead: int, timeout: float = 60,
                 quiet_s: float = 3.0) -> None:
    """Wait until the center has stored what was sent, or nothing changed for ``quiet_s``
    (then whatever is missing stays missing: the check will say so)."""
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT (SELECT count(*) FROM alerts),"
                               " (SELECT count(*) FROM dead_letters)").fetchone()
        now = (int(row[0]), int(row[1])) if row else (0, 0)
        if now[0] >= expected_alerts and now[1] >= expected_dead:
            return
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since > quiet_s:
            return
        time.sleep(0.2)


def wait_timers_caught_up(dsn: str, timeout: float = 30) -> int:
    """Wait until no timer is overdue (due and neither fired nor cancelled); returns how many
    still are when ``timeout`` passes (a scheduler that fell behind, not a lost timer)."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM ticket_timers WHERE due_at <= now() - interval '1 second'"
                " AND fired_at IS NULL AND cancelled_at IS NULL").fetchone()
        overdue = int(row[0]) if row else 0
        if overdue == 0 or time.monotonic() > deadline:
            return overdue
        time.sleep(0.3)


def reconcile_alerts(dsn: str, report: StormReport) -> AlertCheck:
    stored = stored_keys(dsn)
    sent = {(a, int(s)) for a, s in report.alerts}
    missing = sorted(sent - stored.keys())
    with psycopg.connect(dsn) as conn:
        dead = {r[0] for r in conn.execute(
            "SELECT DISTINCT encode(payload_sha256, 'hex') FROM dead_letters").fetchall()}
    malformed = set(report.malformed_sha256)
    return AlertCheck(
        sent_valid=len(sent), stored=len(stored), missing=len(missing),
        stored_twice=sum(1 for n in stored.values() if n > 1),
        unexpected=len(stored.keys() - sent - {(a, int(s)) for a, s in report.unacked_alerts}),
        malformed_sent=len(malformed),
        dead_lettered=len(malformed & dead), malformed_missing=len(malformed - dead),
        missing_sample=[f"{a}#{s}" for a, s in missing[:5]])


def check_tickets(dsn: str) -> TicketCheck:
    problems: list[str] = []
    with psycopg.connect(dsn) as conn:
        tickets = conn.execute(
            "SELECT id, state, is_open, escalation_level, acknowledged_by FROM tickets"
            " ORDER BY id").fetchall()
        events = conn.execute(
            "SELECT ticket_id, action, from_state, to_state FROM ticket_events"
            " ORDER BY ticket_id, id").fetchall()
        twice = conn.execute(
            "SELECT camera_id, zone_id, event_type, count(*) FROM tickets WHERE is_open"
            " AND camera_id IS NOT NULL GROUP BY 1, 2, 3 HAVING count(*) > 1").fetchall()
        pending = conn.execute(
            "SELECT ticket_id, kind FROM ticket_timers WHERE fired_at IS NULL"
            " AND cancelled_at IS NULL").fetchall()
    ledger: dict[int, list[tuple[str, str | None, str]]] = {}
    for tid, action, src, dst in events:
        ledger.setdefault(tid, []).append((action, src, dst))
    timers: dict[int, set[str]] = {}
    for tid, kind in pending:
        timers.setdefault(tid, set()).add(kind)
    by_state: dict[str, int] = {}
    bad_state = bad_ledger = waiting = escalations = 0
    for tid, state, is_open, level, acked in tickets:
        by_state[state] = by_state.get(state, 0) + 1
        if state not in STATES or is_open != (state in OPEN):
            bad_state += 1
            problems.append(f"ticket {tid}: state {state!r} is_open={is_open}")
        chain = ledger.get(tid, [])
        at: str | None = None
        for i, (action, src, dst) in enumerate(chain):
            if action == "escalate":
                escalations += 1
            if i == 0 and action == "register":
                legal = src is None and dst == "registered"
            elif action == "camera_clear":
                legal = src == at and dst == at
            elif action in _LEDGER_ONLY:
                legal = False
            else:
                rule = TRANSITIONS.get((src, action))  # type: ignore[arg-type]
                legal = src == at and rule is not None and rule[0] == dst
            if not legal:
                bad_ledger += 1
                problems.append(f"ticket {tid}: ledger step {i} {action} {src}->{dst} "
                                f"after {at}")
                break
            at = dst
        else:
            if at != state:
                bad_ledger += 1
                problems.append(f"ticket {tid}: ledger ends in {at}, ticket is {state}")
        stage = _STAGE_TIMER.get(state)
        if stage is not None:
            mine = timers.get(tid, set())
            escalating = level >= 1 and ("escalate" in mine or level >= 2 or acked)
            if stage not in mine and not escalating:
                waiting += 1
                problems.append(f"ticket {tid}: {state}, escalation level {level}, "
                                f"no pending {stage} or escalate timer")
    return TicketCheck(
        tickets=len(tickets), by_state=by_state, bad_state=bad_state, bad_ledger=bad_ledger,
        places_with_two_open=len(twice), waiting_without_timer=waiting,
        escalations=escalations, problems=problems[:20])

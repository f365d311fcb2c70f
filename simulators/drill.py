"""Fault drills (``gridwatch sim drill``): scripted trouble against a private stack, then a
reconciliation of everything that was sent with what the center stored.

Each scenario gets a fresh database and broker on the drill's own PostgreSQL, and a center run
as a subprocess (``gridwatch center run``, so it can be SIGKILLed and started again) on a
generated district with deadlines of seconds, so timers fire during the drill:

- ``storm``: an alert storm with bursts, malformed messages and duplicates;
- ``broker-restart``: Mosquitto stopped (SIGTERM: it writes its persistence file) and started
  on the same port and data folder in the middle of the storm;
- ``center-restart``: the center SIGKILLed in the middle of the storm and started again;
- ``late-workers``: worker and leader bots, some accepting after the deadline (escalations),
  some failing verification (rework), with a gentle storm.

Then: every valid ``(alert_id, seq)`` the broker acknowledged is stored exactly once, every
malformed message is in ``dead_letters``, every ticket is legal and no timer is lost
(``simulators/reconcile.py``). Losses are reported as found, never hidden (before issue 7 the
center acknowledged MQTT on receipt and a SIGKILL lost its inbox; docs/simulators.md).

The reliability drills (``simulators/reliability.py``: broker outage, edge restart, API fuzz;
docs/reliability.md) run in the same frame on a broker with accounts and report figures
instead of a reconciliation; ``python -m bench.drills`` runs them full length.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml

from center.store.migrate import ensure_database, migrate
from center.transport.mqtt_auth import AuthFiles, gen_auth
from simulators import reliability
from simulators.alerts import AlertStorm, StormReport, district_cameras, parse_burst
from simulators.center_process import start_center, stop_center
from simulators.district_gen import generate
from simulators.local_services import Mosquitto, Postgres, ServiceError, free_port
from simulators.reconcile import (
    check_tickets,
    reconcile_alerts,
    wait_drained,
    wait_timers_caught_up,
)
from simulators.workers import Bots, BotSettings, PasswordBook, provision_passwords

#: Deadlines of seconds, counted round the clock, so escalations happen during a drill.
DRILL_TIME_LIMITS = {
    "calendar": {"timezone": "Asia/Shanghai"},
    "escalate_every_min": 0.05, "evaluate_within_min": 0.5,
    "default": {"accept_min": 0.05, "handle_min": 0.1, "overall_min": 1.0,
                "round_the_clock": True},
}


@dataclass(frozen=True)
class Size:
    communities: int
    micro_grids: int
    cameras: int
    rate: float
    storm_s: float
    burst: str
    #: broker-outage: alerts/s, seconds down, and before/after the outage; ``before_s``
    #: should exceed the broker's 5 s ``autosave_interval`` (docs/reliability.md).
    outage_rate: float = 50.0
    outage_s: float = 60.0
    outage_before_s: float = 5.0
    outage_after_s: float = 5.0
    outage_settle_s: float = 120.0
    #: edge-restart: how long the bike stays after the edge comes back.
    stay_s: float = 4.0
    #: api-fuzz: generated requests per operation.
    fuzz_examples: int = 25


SMALL = Size(3, 8, 40, rate=150, storm_s=4, burst="1-2:x3", outage_rate=40, outage_s=10,
             outage_before_s=6, outage_after_s=3, outage_settle_s=60, stay_s=3, fuzz_examples=3)
FULL = Size(10, 30, 300, rate=400, storm_s=15, burst="4-7:x4")


@dataclass
class Result:
    scenario: str
    ok: bool = False
    sent: StormReport | None = None
    alerts: dict[str, Any] = field(default_factory=dict)
    tickets: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: What a reliability drill measured (``simulators/reliability.py``), printed as they are.
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "ok": self.ok, "seconds": self.seconds,
                "sent": self.sent.summary() if self.sent else None, "alerts": self.alerts,
                "tickets": self.tickets, "figures": self.figures, "notes": self.notes}


class Stack:
    """PostgreSQL (shared by the scenarios), and per scenario a broker, a database and a
    center subprocess; with ``accounts`` the broker has an account per edge of the district
    and the ACL of ``gridwatch mqtt gen-auth``, and the center logs in like production."""

    def __init__(self, root: Path, size: Size, seed: int) -> None:
        self.root = root
        self.size = size
        self.seed = seed
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg = Postgres(root / "postgres")
        self.district = root / "district"
        self.limits = root / "time_limits.yaml"
        self.broker: Mosquitto | None = None
        self.auth: AuthFiles | None = None
        self.center: subprocess.Popen[bytes] | None = None
        self.dsn = ""
        self.url = ""
        self._env: dict[str, str] = {}
        self._log_name = ""

    def start(self) -> None:
        self.pg.start()
        generate(self.district, communities=self.size.communities,
                 micro_grids=self.size.micro_grids, cameras=self.size.cameras, seed=self.seed)
        self.limits.write_text(yaml.safe_dump(DRILL_TIME_LIMITS), encoding="utf-8")

    def prepare(self, scenario: str, *, accounts: bool = False) -> None:
        """A fresh database and broker for ``scenario``, and its center started."""
        name = "drill_" + scenario.replace("-", "_")
        with psycopg.connect(self.pg.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.dsn = self.pg.dsn(name)
        ensure_database(self.dsn)
        migrate(self.dsn, commit=True)
        broker_dir = self.root / f"mosquitto-{scenario}"
        shutil.rmtree(broker_dir, ignore_errors=True)
        self.auth = None
        if accounts:
            edges = {c.edge_id for c in district_cameras(self.district)}
            self.auth = gen_auth(edges, broker_dir / "mqtt-auth")
            self.broker = Mosquitto(broker_dir, password_file=self.auth.password_file,
                                    acl_file=self.auth.acl_file).start()
        else:
            self.broker = Mosquitto(broker_dir).start()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._env = {**os.environ, "GRIDWATCH_DB__DSN": self.dsn,
                     "GRIDWATCH_MQTT__HOST": "127.0.0.1",
                     "GRIDWATCH_MQTT__PORT": str(self.broker.port),
                     "GRIDWATCH_MQTT__CLIENT_ID": f"drill-center-{scenario}",
                     "GRIDWATCH_HTTP__HOST": "127.0.0.1", "GRIDWATCH_HTTP__PORT": str(port),
                     "GRIDWATCH_DISTRICT": str(self.district / "district.yaml"),
                     "GRIDWATCH_TIME_LIMITS": str(self.limits),
                     # every bot logs in from this one address
                     "GRIDWATCH_AUTH__LOGIN_RATE_IP": "100000/minute"}
        if self.auth is not None:
            self._env |= {"GRIDWATCH_MQTT__USERNAME": self.auth.center_user,
                          "GRIDWATCH_MQTT__PASSWORD_FILE": str(self.auth.center_secret)}
        self._log_name = f"center-{scenario}.log"
        self.start_center()

    def start_center(self, timeout: float = 60) -> None:
        self.center = start_center(self._env, self.url, self.logs / self._log_name, timeout)

    def kill_center(self) -> None:
        if self.center is not None and self.center.poll() is None:
            self.center.send_signal(signal.SIGKILL)
            self.center.wait()

    def finish(self) -> None:
        stop_center(self.center)
        self.center = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def stop(self) -> None:
        self.finish()
        self.pg.stop("immediate")

    def storm(self, **kw: Any) -> AlertStorm:
        assert self.broker is not None
        return AlertStorm(district_cameras(self.district), "127.0.0.1", self.broker.port,
                          seed=self.seed, client_id=f"drill-storm-{time.monotonic_ns()}", **kw)


def _storm_with(stack: Stack, result: Result, fault: Callable[[], None] | None = None,
                rate: float | None = None, duration: float | None = None) -> StormReport:
    """Run a storm; ``fault`` is called half-way through, from another thread."""
    size = stack.size
    storm = stack.storm(malformed=0.05, duplicates=0.1)
    storm.connect()
    duration = duration or size.storm_s
    timer = None
    if fault is not None:
        timer = threading.Timer(duration / 2, fault)
        timer.start()
    try:
        report = storm.run(rate or size.rate, duration, parse_burst(size.burst))
    finally:
        if timer is not None:
            timer.join()
        storm.close()
    result.sent = report
    return report


def _reconcile(stack: Stack, result: Result, report: StormReport) -> None:
    wait_drained(stack.dsn, report.valid, report.malformed, timeout=90, quiet_s=5)
    check = reconcile_alerts(stack.dsn, report)
    overdue = wait_timers_caught_up(stack.dsn)
    tickets = check_tickets(stack.dsn)
    result.alerts = check.as_dict()
    result.tickets = tickets.as_dict() | {"timers_overdue": overdue}
    if overdue:
        result.notes.append(f"{overdue} timers still overdue 30 s after the storm "
                            "(the timer loop is behind)")
    result.ok = check.ok and tickets.ok and report.unacked == 0
    if report.unacked:
        result.notes.append(f"{report.unacked} messages never acknowledged by the broker")
    if check.missing:
        result.notes.append(f"{check.missing} acknowledged alerts were never stored "
                            f"(e.g. {', '.join(check.missing_sample[:2])})")
    result.notes += tickets.problems[:5]


def scenario_storm(stack: Stack, result: Result) -> None:
    _reconcile(stack, result, _storm_with(stack, result))


def scenario_broker_restart(stack: Stack, result: Result) -> None:
    def restart() -> None:
        broker = stack.broker
        assert broker is not None and broker._proc is not None
        proc, t0 = broker._proc, time.monotonic()
        proc.terminate()  # Mosquitto saves its persistence file on SIGTERM
        try:
            proc.wait(60)
            how = f"exited with {proc.returncode} after {time.monotonic() - t0:.1f}s"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            how = "did not exit within 60s and was SIGKILLed"
        broker._proc = None
        time.sleep(1.0)
        broker.start()
        result.notes.append(f"broker stopped (SIGTERM: {how}) and restarted on its port and "
                            "data folder half-way through the storm")

    _reconcile(stack, result, _storm_with(stack, result, restart))
    if result.alerts.get("missing"):
        result.notes.append("seen intermittently: acknowledged alerts lost across a broker "
                            "restart (see docs/simulators.md, 'Findings')")


def scenario_center_restart(stack: Stack, result: Result) -> None:
    def restart() -> None:
        stack.kill_center()
        time.sleep(1.0)
        stack.start_center()
        result.notes.append("center SIGKILLed half-way through the storm and started again")

    report = _storm_with(stack, result, restart)
    _reconcile(stack, result, report)
    if result.alerts.get("missing"):
        result.notes.append("acknowledged by the broker yet lost when the center died: is "
                            "the center acknowledging MQTT before its commit? (issue 7)")


def scenario_late_workers(stack: Stack, result: Result) -> None:
    size = stack.size
    storm_s = max(size.storm_s, 6.0)
    settings = BotSettings(accept_after=0.5, handle_after=1.0, late=0.3, late_after=12.0,
                           fail_verify=0.15, verify_after=1.0, resync_s=1.0, seed=stack.seed)
    holder: dict[str, Bots] = {}

    with psycopg.connect(stack.dsn) as conn:
        people = [r[0] for r in conn.execute(
            "SELECT id FROM district_people WHERE role IN ('worker', 'micro_grid_leader')")]
    passwords = PasswordBook(provision_passwords(stack.dsn, people))

    def bots_thread() -> None:
        async def main() -> None:
            bots = await Bots.discover(stack.url, "all", settings=settings, passwords=passwords)
            holder["bots"] = bots
            await bots.run(duration=storm_s + 14)

        asyncio.run(main())

    t = threading.Thread(target=bots_thread, name="drill-bots")
    t.start()
    report = _storm_with(stack, result, rate=min(size.rate, 20), duration=storm_s)
    t.join()
    _reconcile(stack, result, report)
    bots = holder.get("bots")
    if bots is None:
        result.ok = False
        result.notes.append("the bots did not start")
        return
    late = bots.report.late_tickets
    with psycopg.connect(stack.dsn) as conn:
        escalated = {r[0] for r in conn.execute(
            "SELECT DISTINCT ticket_id FROM ticket_events WHERE action = 'escalate'"
            " AND ticket_id = ANY(%s)", (late,)).fetchall()}
        handled = conn.execute(
            "SELECT count(DISTINCT ticket_id) FROM ticket_events WHERE action = 'resolve'"
        ).fetchone()
    result.tickets["late_tickets"] = len(late)
    result.tickets["late_escalated"] = len(escalated)
    result.tickets["bot_actions"] = bots.report.actions
    result.notes.append(f"bots: {bots.report.actions}; {len(late)} late tickets, "
                        f"{len(escalated)} of them escalated; "
                        f"{handled[0] if handled else 0} tickets resolved")
    if not late or len(escalated) < len(late) or not bots.report.actions.get("resolve"):
        result.ok = False
        result.notes.append("expected every late ticket to escalate and some to be resolved; "
                            f"late but not escalated: {sorted(set(late) - escalated)[:10]}")


@dataclass(frozen=True)
class Scenario:
    run: Callable[[Stack, Result], None]
    #: The broker has accounts and the ACL (the drills that log in like production edges).
    accounts: bool = False


#: The reconciled storms first (``all`` in tests/test_sim_drill.py runs them by name), then
#: the reliability drills.
SCENARIOS: dict[str, Scenario] = {
    "storm": Scenario(scenario_storm),
    "broker-restart": Scenario(scenario_broker_restart),
    "center-restart": Scenario(scenario_center_restart),
    "late-workers": Scenario(scenario_late_workers),
    "broker-outage": Scenario(reliability.broker_outage, accounts=True),
    "edge-restart": Scenario(reliability.edge_restart, accounts=True),
    "api-fuzz": Scenario(reliability.api_fuzz, accounts=True),
}


def table(results: list[Result]) -> str:
    """The reconciliation table of the storm scenarios, then each reliability drill's figures
    (a Markdown table, as docs/reliability.md shows them), then every note."""
    head = ("scenario", "sent", "dup", "malformed", "stored", "missing", "twice",
            "dead-lettered", "tickets", "illegal", "no-timer", "result")
    rows = [head]
    for r in results:
        if r.figures:
            continue
        s, a, t = r.sent, r.alerts, r.tickets
        rows.append((
            r.scenario, str(s.valid if s else "-"), str(s.duplicates if s else "-"),
            str(s.malformed if s else "-"), str(a.get("stored", "-")),
            str(a.get("missing", "-")), str(a.get("stored_twice", "-")),
            f"{a.get('dead_lettered', '-')}/{a.get('malformed_sent', '-')}",
            str(t.get("tickets", "-")),
            str(t.get("bad_state", 0) + t.get("bad_ledger", 0) + t.get("places_with_two_open", 0)
                if t else "-"),
            str(t.get("waiting_without_timer", "-")), "PASS" if r.ok else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = (["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
             if len(rows) > 1 else [])
    if measured := [r for r in results if r.figures]:
        lines += ["| drill | figures | result |", "|---|---|---|"]
        lines += [f"| {r.scenario} | {', '.join(f'{k} {v}' for k, v in r.figures.items())} "
                  f"| {'ok' if r.ok else 'FAILED'} |" for r in measured]
    for r in results:
        for note in r.notes:
            lines.append(f"- {r.scenario}: {note}")
    return "\n".join(lines)


def run_drill(names: list[str], *, small: bool = False, size: Size | None = None,
              data_dir: Path | None = None, seed: int = 1, report: Path | None = None,
              echo: Callable[[str], None] = print) -> bool:
    """Run the scenarios in order; prints the table; True when every one passed. ``size``
    (default ``SMALL`` or ``FULL`` by ``small``) sets the district and the drills' lengths."""
    size = size or (SMALL if small else FULL)
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="gridwatch-drill-"))
    stack = Stack(root.resolve(), size, seed)
    results: list[Result] = []
    try:
        echo(f"drill: district {size.communities} communities / {size.micro_grids} micro-grids"
             f" / {size.cameras} cameras; storm {size.rate:g} msg/s for {size.storm_s:g}s; "
             f"data in {root}")
        stack.start()
        for name in names:
            result = Result(name)
            t0 = time.monotonic()
            echo(f"drill: {name} ...")
            try:
                scenario = SCENARIOS[name]
                stack.prepare(name, accounts=scenario.accounts)
                scenario.run(stack, result)
            except (ServiceError, OSError, psycopg.Error) as exc:
                result.ok = False
                result.notes.append(f"could not run: {exc}")
            finally:
                stack.finish()
            result.seconds = round(time.monotonic() - t0, 1)
            results.append(result)
            echo(f"drill: {name} {'PASS' if result.ok else 'FAIL'} ({result.seconds}s)")
    finally:
        stack.stop()
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    echo(table(results))
    if report:
        report.write_text(json.dumps([r.as_dict() for r in results], indent=1),
                          encoding="utf-8")
    return all(r.ok for r in results)

"""The ticket state machine, as data: the spec, the test input and the UI's button list.

Each entry reads "in state S, action A leads to state T, and may be taken by these roles". It
follows the GB/T 30428 loop (register → dispatch → handle → feed back → verify → evaluate →
close) with its special actions: void (false alarm), return (mis-dispatched: back for
re-routing), extension (request, then approval), rework (verification failed: dispatched
again), and its chain of command (worker → micro-grid leader → departments): hand_off (a case
the micro-grid cannot solve goes to a line department's queue; the department handles it and
it comes back, handled, for the leader's or operator's verification), escalate (by the
timers, or by hand with a reason), urge (a loud push to the assignee's phone). Actions whose
target is their own state (reassign, extension, escalate, acknowledge, urge) change no state
but are still written to the ledger. docs/tickets.md is rendered from this table.
"""

from __future__ import annotations

from typing import Literal

State = Literal["registered", "dispatched", "accepted", "handling", "handled", "verified",
                "evaluated", "closed", "void"]
Role = Literal["system", "camera", "worker", "leader", "department", "operator", "public"]

STATES: tuple[State, ...] = ("registered", "dispatched", "accepted", "handling", "handled",
                             "verified", "evaluated", "closed", "void")
TERMINAL: frozenset[State] = frozenset({"closed", "void"})
#: The case at a place is still being worked: one such ticket per place, repeats attach to it.
#: Once verified, the place is clear again and a new violation there is a new case.
OPEN: frozenset[State] = frozenset({"registered", "dispatched", "accepted", "handling",
                                    "handled"})

_STAFF: frozenset[Role] = frozenset({"leader", "operator"})
_HANDLERS: frozenset[Role] = frozenset({"worker", "leader", "department"})
_LIVE: tuple[State, ...] = tuple(s for s in STATES if s not in TERMINAL)
_BEFORE_HANDLED: tuple[State, ...] = ("registered", "dispatched", "accepted", "handling")
_WORKING: tuple[State, ...] = ("accepted", "handling")
#: States in which someone has the case in hand and can be pushed to get on with it.
_ASSIGNED: tuple[State, ...] = ("dispatched", "accepted", "handling")

#: (from state, action) -> (to state, roles allowed to take it)
TRANSITIONS: dict[tuple[str, str], tuple[State, frozenset[Role]]] = {
    ("registered", "dispatch"): ("dispatched", frozenset({"system", "operator", "leader"})),
    ("dispatched", "accept"): ("accepted", _HANDLERS),
    ("dispatched", "return"): ("registered", _HANDLERS),
    ("accepted", "return"): ("registered", _HANDLERS),
    ("accepted", "arrive"): ("handling", _HANDLERS),
    ("accepted", "resolve"): ("handled", _HANDLERS),
    ("handling", "resolve"): ("handled", _HANDLERS),
    # Verification: the camera that found the problem reports the place clear (an `end`
    # alert), or a leader checks on site. A failed check is rework: dispatched again, counted.
    ("handled", "verify"): ("verified", frozenset({"camera", "leader", "operator"})),
    ("handled", "rework"): ("dispatched", frozenset({"camera", "leader", "operator"})),
    ("verified", "rate"): ("evaluated", frozenset({"public", "operator"})),
    ("verified", "close"): ("closed", frozenset({"system", "leader", "operator"})),
    ("evaluated", "close"): ("closed", frozenset({"system", "leader", "operator"})),
    **{(s, "void"): ("void", _STAFF) for s in _BEFORE_HANDLED},
    **{(s, "reassign"): ("dispatched", _STAFF) for s in _BEFORE_HANDLED},
    **{(s, "request_extension"): (s, frozenset({"worker", "department"})) for s in _WORKING},
    **{(s, "approve_extension"): (s, _STAFF) for s in _WORKING},
    # To a department's queue (its staff accept it there), by those who route cases.
    **{(s, "hand_off"): ("dispatched", _STAFF) for s in _BEFORE_HANDLED},
    # The timers escalate on their own; staff escalate by hand, with a reason.
    **{(s, "escalate"): (s, frozenset({"system", "leader", "operator"})) for s in _LIVE},
    **{(s, "urge"): (s, _STAFF) for s in _ASSIGNED},
    **{(s, "acknowledge"): (s, frozenset({"leader", "department", "operator"})) for s in _LIVE},
}

#: Actions that count as rework in the indicators.
REWORK_ACTIONS = frozenset({"rework"})


class IllegalTransition(ValueError):
    """The action is not allowed in the ticket's state, or not for this role."""


def next_state(state: str, action: str, role: str) -> State:
    """The state ``action`` leads to, or IllegalTransition saying why not."""
    rule = TRANSITIONS.get((state, action))
    if rule is None:
        allowed = ", ".join(a for (s, a) in TRANSITIONS if s == state) or "none"
        raise IllegalTransition(
            f"action {action!r} is not allowed in state {state!r} (allowed: {allowed})"
        )
    to_state, roles = rule
    if role not in roles:
        raise IllegalTransition(
            f"a {role} may not {action!r} a ticket in state {state!r} "
            f"(allowed for: {', '.join(sorted(roles))})"
        )
    return to_state


def actions_for(state: str, role: str) -> list[str]:
    """Actions a role may take in a state, in table order (the buttons a page shows)."""
    return [a for (s, a), (_, roles) in TRANSITIONS.items() if s == state and role in roles]


def is_open(state: str) -> bool:
    return state in OPEN


def mermaid() -> str:
    """The state diagram in Mermaid syntax (docs/tickets.md embeds it)."""
    lines = ["stateDiagram-v2", "    [*] --> registered"]
    for (src, action), (dst, roles) in TRANSITIONS.items():
        if src != dst:
            lines.append(f"    {src} --> {dst}: {action} ({', '.join(sorted(roles))})")
    lines += ["    closed --> [*]", "    void --> [*]"]
    return "\n".join(lines)


def markdown_table() -> str:
    """Every transition as a Markdown table (docs/tickets.md embeds it)."""
    rows = ["| from | action | to | who may |", "|---|---|---|---|"]
    for (src, action), (dst, roles) in TRANSITIONS.items():
        rows.append(f"| {src} | `{action}` | {'(same)' if dst == src else dst} | "
                    f"{', '.join(sorted(roles))} |")
    return "\n".join(rows)


def render_doc(template: str) -> str:
    """docs/tickets.md with its generated blocks refreshed from this table."""
    out = []
    skipping = False
    for line in template.splitlines():
        if line.startswith("<!-- generated:"):
            skipping = False
            name = line.removeprefix("<!-- generated:").removesuffix("-->").strip()
            body = {"diagram": f"```mermaid\n{mermaid()}\n```", "table": markdown_table()}[name]
            out += [line, body, "<!-- end generated -->"]
            skipping = True
            continue
        if skipping:
            if line.startswith("<!-- end generated -->"):
                skipping = False
            continue
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "tickets.md"
    doc.write_text(render_doc(doc.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"rendered {doc}\n")

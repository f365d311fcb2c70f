"""The ticket state machine, as data: the spec, the test input and the UI's button list.

Each entry reads "in state S, action A leads to state T, and may be taken by these roles".
The walking skeleton covers the core of the GB/T 30428 loop (register → dispatch → accept →
handle → verify/close); void, return, extension and rework join this table, not code elsewhere.
"""

from __future__ import annotations

from typing import Literal

State = Literal["registered", "dispatched", "accepted", "handled", "closed", "void"]
Role = Literal["system", "camera", "worker", "leader", "operator"]

#: (from state, action) -> (to state, roles allowed to take it)
TRANSITIONS: dict[tuple[State, str], tuple[State, frozenset[Role]]] = {
    ("registered", "dispatch"): ("dispatched", frozenset({"system", "operator"})),
    ("dispatched", "accept"): ("accepted", frozenset({"worker"})),
    ("accepted", "resolve"): ("handled", frozenset({"worker"})),
    # The camera that found the problem reports the place clear (an `end` alert), or a leader
    # checks on site: either verifies the fix and closes the case.
    ("handled", "verify"): ("closed", frozenset({"camera", "leader", "operator"})),
    ("registered", "void"): ("void", frozenset({"operator", "leader"})),
    ("dispatched", "void"): ("void", frozenset({"operator", "leader"})),
}

STATES: tuple[State, ...] = ("registered", "dispatched", "accepted", "handled", "closed", "void")
TERMINAL: frozenset[State] = frozenset({"closed", "void"})


class IllegalTransition(ValueError):
    """The action is not allowed in the ticket's state, or not for this role."""


def next_state(state: str, action: str, role: str) -> State:
    """The state ``action`` leads to, or IllegalTransition saying why not."""
    rule = TRANSITIONS.get((state, action))  # type: ignore[call-overload]
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
    return state not in TERMINAL

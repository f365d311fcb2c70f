"""Every (state, action, role) combination: allowed exactly when the table says so."""

from __future__ import annotations

import itertools

import pytest

from center.domain.ticket_states import (
    STATES,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    actions_for,
    is_open,
    next_state,
)

ACTIONS = sorted({a for _, a in TRANSITIONS} | {"fly", ""})
ROLES = ["system", "camera", "worker", "leader", "operator"]


@pytest.mark.parametrize(("state", "action", "role"),
                         list(itertools.product(STATES, ACTIONS, ROLES)))
def test_every_pair(state: str, action: str, role: str) -> None:
    rule = TRANSITIONS.get((state, action))  # type: ignore[call-overload]
    if rule is not None and role in rule[1]:
        assert next_state(state, action, role) == rule[0]
        assert action in actions_for(state, role)
    else:
        with pytest.raises(IllegalTransition) as err:
            next_state(state, action, role)
        assert state in str(err.value)
        assert action not in actions_for(state, role)


def test_table_is_closed_over_known_states() -> None:
    for (src, _), (dst, roles) in TRANSITIONS.items():
        assert src in STATES and dst in STATES and roles
    assert not any(src in TERMINAL for src, _ in TRANSITIONS)
    assert [s for s in STATES if not is_open(s)] == ["verified", "evaluated", "closed", "void"]


def test_worker_buttons_follow_the_loop() -> None:
    assert actions_for("dispatched", "worker") == ["accept", "return"]
    assert actions_for("accepted", "worker") == ["return", "arrive", "resolve",
                                                 "request_extension"]
    assert actions_for("handling", "worker") == ["resolve", "request_extension"]
    assert actions_for("handled", "worker") == []


def test_docs_are_rendered_from_the_table() -> None:
    from center.domain.ticket_states import render_doc
    from wire.paths import REPO

    doc = (REPO / "docs" / "tickets.md").read_text(encoding="utf-8")
    assert doc == render_doc(doc), (
        "docs/tickets.md is stale: run python -m center.domain.ticket_states")
    assert "handled --> dispatched: rework" in doc
